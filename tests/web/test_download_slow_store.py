"""A download waiting for the object store holds no database transaction: on SQLite every
transaction holds the write lock, so one that waited for the store would hold up every
other request of every process until the store answered."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.fixtures.app import World
from tests.fixtures.documents import API, upload
from tests.fixtures.gate import StoreGate
from tests.fixtures.s3 import s3_endpoint
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as s3_settings  # noqa: F401 (a fixture, by that name)
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
        await anyio.sleep(0.5)  # the download is waiting for the store's first answer
        assert got == []
        # Audited, so it writes: it needs the write lock the download must not hold.
        with anyio.fail_after(10):
            me = await http.get(f"{API}/me", headers=world["sam"].auth)
        assert me.status_code == 200, me.text
        assert got == []
        gate.release()
    assert got[0].status_code == 200, got[0].text
    assert got[0].content == data
