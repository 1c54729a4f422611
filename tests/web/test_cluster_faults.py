"""Faults in production shape (tests/fixtures/cluster.py), each ending with nothing lost and
nothing half-visible: a node killed mid-upload, a node stopped with SIGTERM mid-download and
mid-upload, and the object store gone mid-upload and mid-download (the `StoreGate` the nodes
reach it by is closed: connections refused, those open cut, the same with moto or a Ceph RGW).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.cluster_world import ClusterWorld
from tests.fixtures.live import Pattern
from tests.fixtures.tus import TUS, metadata

pytestmark = pytest.mark.cluster

MiB = 1024 * 1024


async def create_upload(http: httpx.AsyncClient, world: ClusterWorld, size: int, name: str) -> str:
    response = await http.post(
        "/api/v1/uploads",
        headers={
            **TUS,
            **world.admin,
            "Upload-Length": str(size),
            "Upload-Metadata": metadata(filename=name, folder_id=world.folder_id),
        },
    )
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


async def patch(
    http: httpx.AsyncClient,
    world: ClusterWorld,
    location: str,
    offset: int,
    body: bytes | AsyncIterator[bytes],
) -> httpx.Response:
    return await http.patch(
        location,
        content=body,
        headers={
            **TUS,
            **world.admin,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


async def offset_of(http: httpx.AsyncClient, world: ClusterWorld, location: str) -> int:
    response = await http.head(location, headers={**TUS, **world.admin})
    assert response.status_code == 200, response.headers
    return int(response.headers["upload-offset"])


async def finish(
    http: httpx.AsyncClient, world: ClusterWorld, location: str, data: bytes
) -> tuple[str, list[str]]:
    """PATCH the rest from the server's offset, 1 MiB at a time: (document id, request ids)."""
    offset = await offset_of(http, world, location)
    ids = []
    response = None
    while offset < len(data):
        response = await patch(http, world, location, offset, data[offset : offset + MiB])
        assert response.status_code == 204, response.text
        ids.append(response.headers["x-request-id"])
        offset = int(response.headers["upload-offset"])
    assert response is not None
    return response.headers["document-id"], ids


async def content(http: httpx.AsyncClient, world: ClusterWorld, document_id: str) -> bytes:
    response = await http.get(f"/api/v1/documents/{document_id}/content", headers=world.user)
    assert response.status_code == 200, response.text
    return response.content


async def names_in_folder(http: httpx.AsyncClient, world: ClusterWorld) -> list[str]:
    response = await http.get(f"/api/v1/folders/{world.folder_id}", headers=world.admin)
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["documents"]]


async def put(http: httpx.AsyncClient, world: ClusterWorld, name: str, data: bytes) -> str:
    response = await http.put(
        f"/api/v1/folders/{world.folder_id}/files/{name}", content=data, headers=world.admin
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_node_killed_mid_upload_the_client_resumes_on_another(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("sigkill").read(0, 7 * MiB + 4321)
    async with cluster.http(timeout=60) as http:
        location = await create_upload(http, cluster_world, len(data), "killed.bin")
        first = await patch(http, cluster_world, location, 0, data[:MiB])
        assert first.status_code == 204, first.text
        victim = await cluster.next_node()
        sent = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            for start in range(MiB, 2 * MiB, 256 * 1024):
                yield data[start : start + 256 * 1024]
                sent.set()
                await asyncio.sleep(0.5)

        in_flight = asyncio.create_task(patch(http, cluster_world, location, MiB, slow()))
        await sent.wait()
        await asyncio.sleep(0.2)
        victim.kill()
        try:
            cut = await in_flight
        except httpx.TransportError:
            pass  # the balancer may drop the connection rather than answer
        else:
            assert cut.status_code >= 500, cut.text
        try:
            document_id, ids = await finish(http, cluster_world, location, data)
            survivors = {cluster.node_of(i).index for i in ids}
            assert survivors == {1 - victim.index}
            assert digest(await content(http, cluster_world, document_id)) == digest(data)
            assert (await names_in_folder(http, cluster_world)).count("killed.bin") == 1
        finally:
            cluster.restart(victim)
    # Whatever the killed node left in the store is garbage gc removes; then nothing is
    # missing and nothing is orphaned (fsck exits non-zero otherwise).
    cluster.cli("gc", "--grace-hours", "0")
    cluster.cli("fsck", "--grace-minutes", "0")
    with contextlib.closing(cluster.s3.client()) as s3:
        assert not s3.list_multipart_uploads(Bucket=cluster.bucket).get("Uploads")


async def test_sigterm_drains_readiness_first_and_finishes_the_download(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("sigterm").read(0, 24 * MiB)
    async with cluster.http(timeout=60) as http:
        document_id = await put(http, cluster_world, "drained.bin", data)
        victim = await cluster.next_node()
        received = bytearray()
        async with http.stream(
            "GET", f"/api/v1/documents/{document_id}/content", headers=cluster_world.user
        ) as response:
            assert response.status_code == 200
            async for piece in response.aiter_bytes(64 * 1024):
                received += piece
                if len(received) == len(piece):
                    victim.signal(signal.SIGTERM)
                    async with httpx.AsyncClient(base_url=victim.url) as direct:
                        ready = await direct.get("/readyz")
                    # Not ready at once, while the download goes on.
                    assert ready.status_code == 503
                    assert ready.json()["status"] == "draining"
                    # Meanwhile the balancer serves every request, on whichever node.
                    for _ in range(4):
                        assert (await http.get("/healthz")).status_code == 200
                await asyncio.sleep(0.01)
            request_id = response.headers["x-request-id"]
        assert digest(bytes(received)) == digest(data)
        try:
            assert cluster.node_of(request_id) is victim
            assert victim.process is not None
            started = time.monotonic()
            victim.process.wait(25)
            assert time.monotonic() - started < 25
            for _ in range(4):  # the stopped node is skipped
                assert (await http.get("/healthz")).status_code == 200
        finally:
            cluster.restart(victim)


async def test_store_down_mid_upload_is_a_503_and_the_upload_resumes(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("store-upload").read(0, 12 * MiB + 777)
    async with cluster.http(timeout=60) as http:
        location = await create_upload(http, cluster_world, len(data), "outage-up.bin")
        for offset in range(0, 3 * MiB, MiB):
            ok = await patch(http, cluster_world, location, offset, data[offset : offset + MiB])
            assert ok.status_code == 204, ok.text
        cluster.gate.close()
        try:
            statuses = []
            offset = await offset_of(http, cluster_world, location)
            while offset < len(data) and 503 not in statuses:
                response = await patch(
                    http, cluster_world, location, offset, data[offset : offset + MiB]
                )
                statuses.append(response.status_code)
                if response.status_code == 204:
                    offset = int(response.headers["upload-offset"])
                else:
                    assert response.status_code == 503, response.text
                    assert response.headers["content-type"] == "application/problem+json"
            assert 503 in statuses
            assert "outage-up.bin" not in await names_in_folder(http, cluster_world)
        finally:
            cluster.gate.open()
        document_id, _ = await finish(http, cluster_world, location, data)
        assert digest(await content(http, cluster_world, document_id)) == digest(data)
        assert (await names_in_folder(http, cluster_world)).count("outage-up.bin") == 1
        versions = await http.get(f"/api/v1/documents/{document_id}", headers=cluster_world.user)
        assert len(versions.json()["versions"]) == 1


async def read_closing_the_gate(
    http: httpx.AsyncClient, url: str, world: ClusterWorld, received: bytearray
) -> None:
    """Download into `received`, closing the store's gate once 2 MiB have arrived."""
    async with http.stream("GET", url, headers=world.user) as response:
        assert response.status_code == 200
        async for piece in response.aiter_bytes(64 * 1024):
            received += piece
            if len(received) >= 2 * MiB and world.cluster.gate.is_open:
                world.cluster.gate.close()


async def test_store_down_mid_download_cuts_the_stream_never_wrong_bytes(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("store-download").read(0, 32 * MiB)
    async with cluster.http(timeout=60) as http:
        document_id = await put(http, cluster_world, "outage-down.bin", data)
        url = f"/api/v1/documents/{document_id}/content"
        received = bytearray()
        try:
            with pytest.raises(httpx.TransportError):  # a cut stream, not a clean end
                await read_closing_the_gate(http, url, cluster_world, received)
            assert 2 * MiB <= len(received) < len(data)
            assert received == data[: len(received)]
            refused = await http.get(url, headers=cluster_world.user)
            assert refused.status_code == 503, refused.text
        finally:
            cluster.gate.open()
        assert digest(await content(http, cluster_world, document_id)) == digest(data)


async def test_sigterm_lets_the_upload_in_flight_finish_and_the_client_goes_on_elsewhere(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("sigterm-upload").read(0, 5 * MiB + 999)
    async with cluster.http(timeout=60) as http:
        location = await create_upload(http, cluster_world, len(data), "drained-upload.bin")
        victim = await cluster.next_node()
        sent = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            for start in range(0, 2 * MiB, 256 * 1024):
                yield data[start : start + 256 * 1024]
                sent.set()
                await asyncio.sleep(0.25)

        in_flight = asyncio.create_task(patch(http, cluster_world, location, 0, slow()))
        await sent.wait()
        victim.signal(signal.SIGTERM)
        try:
            # The PATCH the node had begun is served to its end, well inside the deadline.
            done = await in_flight
            assert done.status_code == 204, done.text
            assert int(done.headers["upload-offset"]) == 2 * MiB
            assert cluster.node_of(done.headers["x-request-id"]) is victim
            assert victim.process is not None
            victim.process.wait(25)
            # The rest goes to the node still running, and the file is whole.
            document_id, ids = await finish(http, cluster_world, location, data)
            assert {cluster.node_of(i).index for i in ids} == {1 - victim.index}
            assert digest(await content(http, cluster_world, document_id)) == digest(data)
        finally:
            cluster.restart(victim)
