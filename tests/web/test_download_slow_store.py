"""A download waiting for the object store holds no database transaction: on SQLite every
transaction holds the write lock, so one that waited for the store would hold up every
other request of every process until the store answered. So for a download through a share
link, which is counted against the link only once the store has answered: a link revoked
meanwhile admits nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from sqlmodel import col, select
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.documents import API, upload
from tests.fixtures.gate import StoreGate
from tests.fixtures.s3 import s3_endpoint
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as s3_settings  # noqa: F401 (a fixture, by that name)
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services
from web.settings import Settings


@pytest.fixture
def gate(request: pytest.FixtureRequest) -> Iterator[StoreGate]:
    relay = StoreGate(s3_endpoint(request).url)
    relay.open()
    try:
        yield relay
    finally:
        relay.release()
        relay.close()


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, gate: StoreGate) -> Settings:
    """The app on an S3 bucket of its own, reached through `gate`."""
    del database_url  # asked for here so that the test runs on each database
    plain: Settings = request.getfixturevalue("s3_settings")
    return plain.model_copy(
        update={"storage": plain.storage.model_copy(update={"endpoint_url": gate.url})}
    )


async def test_other_requests_go_on_while_a_download_waits_for_the_store(
    http: httpx.AsyncClient, world: World, gate: StoreGate
) -> None:
    alice = world["alice"].auth
    data = bytes(range(256)) * 4096
    stored = await upload(http, alice, world.acme_folder, "slow.bin", data)
    assert stored.status_code == 201, stored.text
    document_id = stored.json()["document_id"]
    got: list[httpx.Response] = []

    async def download() -> None:
        got.append(await http.get(f"{API}/documents/{document_id}/content", headers=alice))

    gate.hold()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(download)
        try:  # released whatever happens, or the download would never end
            await anyio.sleep(0.5)  # the download is waiting for the store's first answer
            assert got == []
            # Audited, so it writes: it needs the write lock the download must not hold.
            with anyio.fail_after(10):
                me = await http.get(f"{API}/me", headers=world["sam"].auth)
            assert me.status_code == 200, me.text
            assert got == []
        finally:
            gate.release()
    assert got[0].status_code == 200, got[0].text
    assert got[0].content == data


async def test_a_share_link_revoked_while_its_download_waits_for_the_store_admits_nothing(
    http: httpx.AsyncClient, app: ASGIApp, world: World, gate: StoreGate, services: Services
) -> None:
    sam = world["sam"].auth
    stored = await upload(http, sam, world.acme_folder, "shared.bin", b"\x07" * 300_000)
    assert stored.status_code == 201, stored.text
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    made = await http.post(
        f"{API}/documents/{stored.json()['document_id']}/links",
        json={"expires_at": expires},
        headers=sam,
    )
    assert made.status_code == 201, made.text
    link_id, path = made.json()["id"], made.json()["url"].removeprefix("http://127.0.0.1:8000")
    got: list[httpx.Response] = []
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as visitor:

        async def download() -> None:
            got.append(await visitor.get(f"{path}/content"))

        gate.hold()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(download)
            try:
                await anyio.sleep(0.5)  # the download is waiting for the store's first answer
                assert got == []
                with anyio.fail_after(10):  # the revocation writes: the download holds no lock
                    revoked = await http.delete(f"{API}/links/{link_id}", headers=sam)
                assert revoked.status_code == 204, revoked.text
                assert got == []
            finally:
                gate.release()
    assert got[0].status_code == 404, got[0].text
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.target_id == link_id).order_by(col(AuditEvent.seq))
        )
        events = [(e.action, json.loads(e.details).get("reason")) for e in found.scalars()]
    assert events == [("link.created", None), ("link.revoked", None), ("link.refused", "revoked")]
