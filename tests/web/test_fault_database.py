"""PostgreSQL stopped and started again under load, in production shape (two nodes behind
nginx, tests/fixtures/cluster.py, on a PostgreSQL server of the test's own): requests fail
fast with 503 while it is down, the connection pools heal without a restart of any node, and
nothing is lost or half-visible (every upload that answered 201 is there, every one that
failed is not)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cluster import USER_PASSWORD, Cluster
from tests.fixtures.cluster_world import ClusterWorld, provisioned_cluster
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.cluster

REQUEST_TIMEOUT = 15.0
FAIL_FAST = 6.0  # seconds: a request may wait for a connection this long, never to the timeout
WORKERS = 6


@dataclass(frozen=True, slots=True)
class Outcome:
    op: str
    status: int  # 0: no answer (the transport failed)
    problem: bool
    elapsed: float
    name: str = ""
    sha256: str = ""


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test stops it."""
    root = Path(tempfile.mkdtemp(prefix="cv-pg-fault-"))  # mode 0700
    server = PostgresServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_cluster(
    request: pytest.FixtureRequest, own_postgres: PostgresServer, tmp_path: Path
) -> Iterator[ClusterWorld]:
    """Two nodes behind nginx on `own_postgres`, provisioned like the session's cluster."""
    root = tmp_path / "cluster"
    root.mkdir(mode=0o700)
    with provisioned_cluster(request, own_postgres, root) as world:
        yield world


async def load(
    cluster: Cluster,
    world: ClusterWorld,
    document_id: str,
    stop: asyncio.Event,
    results: list[Outcome],
) -> None:
    async with cluster.http(timeout=REQUEST_TIMEOUT) as http:
        while not stop.is_set():
            name = f"load-{uuid.uuid4().hex[:12]}.txt"
            data = name.encode() * 50

            async def send(op: str, name: str, data: bytes) -> httpx.Response:
                if op == "list":
                    url = f"/api/v1/folders/{world.folder_id}"
                    return await http.get(url, headers=world.user)
                if op == "download":
                    url = f"/api/v1/documents/{document_id}/content"
                    return await http.get(url, headers=world.user)
                url = f"/api/v1/folders/{world.folder_id}/files/{name}"
                return await http.put(url, content=data, headers=world.user)

            for op in ("list", "download", "upload"):
                started = time.monotonic()
                try:
                    response = await send(op, name, data)
                    status = response.status_code
                    problem = response.headers.get("content-type", "").startswith(
                        "application/problem+json"
                    )
                except httpx.TransportError:
                    status, problem = 0, False
                elapsed = time.monotonic() - started
                sha = hashlib.sha256(data).hexdigest() if op == "upload" else ""
                results.append(Outcome(op, status, problem, elapsed, name, sha))
            await asyncio.sleep(0.01)


async def test_a_database_restart_answers_503_fast_and_the_pool_heals(
    own_cluster: ClusterWorld, own_postgres: PostgresServer
) -> None:
    world, cluster = own_cluster, own_cluster.cluster
    browser = cluster.http(timeout=REQUEST_TIMEOUT)
    signed_in = await browser.post(
        "/login", data={"email": world.user_email, "password": USER_PASSWORD}
    )
    assert signed_in.status_code == 303, signed_in.text
    async with cluster.http() as http:
        response = await http.put(
            f"/api/v1/folders/{world.folder_id}/files/first.txt",
            content=b"first",
            headers=world.user,
        )
        assert response.status_code == 201, response.text
        document_id = response.json()["document_id"]

    stop = asyncio.Event()
    results: list[Outcome] = []
    workers = [
        asyncio.create_task(load(cluster, world, document_id, stop, results))
        for _ in range(WORKERS)
    ]
    await asyncio.sleep(1.5)
    before = len(results)
    # "fast": PostgreSQL ends every session, as a restart for an upgrade does.
    await asyncio.to_thread(own_postgres.stop, "fast")
    down_at = time.monotonic()
    await asyncio.sleep(1)
    # A signed-in browser gets a page that says so, in its language, not a traceback.
    page = await browser.get(f"/folders/{world.folder_id}", headers={"Accept-Language": "ja"})
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "一時的に利用できません" in page.text  # "Briefly unavailable"
    await asyncio.sleep(2)
    await asyncio.to_thread(own_postgres.launch)
    up_after = time.monotonic() - down_at
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*workers)

    logs = "\n".join(node.log()[-1500:] for node in cluster.nodes)
    assert before > 0 and len(results) > before
    unexpected = [r for r in results if r.status not in (200, 201, 503)]
    assert not unexpected, f"{unexpected[:5]}\n{logs}"
    refused = [r for r in results if r.status == 503]
    assert refused, f"no request failed while the database was down for {up_after:.1f} s"
    assert all(r.problem for r in refused)
    slowest = max(r.elapsed for r in results)
    assert slowest < FAIL_FAST, f"a request took {slowest:.1f} s"

    # The pools healed: every request succeeds again, on both nodes, none restarted.
    async with cluster.http() as http:
        for _ in range(10):
            listing = await http.get(f"/api/v1/folders/{world.folder_id}", headers=world.user)
            assert listing.status_code == 200, listing.text
        stored = {d["name"]: d for d in listing.json()["documents"]}
        uploads = [r for r in results if r.op == "upload"]
        for outcome in uploads:
            if outcome.status == 201:
                meta = await http.get(
                    f"/api/v1/documents/{stored[outcome.name]['id']}", headers=world.user
                )
                assert meta.json()["versions"][0]["sha256"] == outcome.sha256
            else:
                assert outcome.name not in stored, f"{outcome.name} answered 503 but is visible"
        page = await browser.get(f"/folders/{world.folder_id}")
        assert page.status_code == 200  # the same browser session, on the healed pool
    await browser.aclose()
    assert all(node.alive() for node in cluster.nodes)
    assert "ok: " in cluster.cli("audit", "verify")
    # Objects written by uploads that failed are orphans that gc removes; then all is clean.
    cluster.cli("gc", "--grace-hours", "0")
    cluster.cli("fsck", "--deep", "--grace-minutes", "0")
