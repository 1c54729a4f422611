"""Memory of many tus PATCHes at once: one process-wide budget of upload parts
(`[uploads].budget_mib`) bounds them all together, checksummed bodies included."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.fixtures.app import World, make_settings
from tests.fixtures.memory import peak_rss_growth
from tests.fixtures.tus import download, new_upload, send
from vault.crypto.keyring import KeyFile
from vault.uploads.append import REQUEST_PARTS
from web.settings import Settings, UploadSettings

pytestmark = pytest.mark.slow  # 20 bodies of 11 MiB at once

MiB = 1 << 20
PART = 5 * MiB  # the part size of the test settings
BUDGET = REQUEST_PARTS * PART  # the least the budget may be: what one checksummed PATCH holds
UPLOADS = 20
SIZE = 2 * PART + MiB  # two whole parts and a final one: the pipeline fills up
CHECKSUMMED = 4  # of the 20, the first few send Upload-Checksum
# Parts take a part's worth of the budget each, and a part is in memory once (it is sealed
# where its plaintext arrived): the budget. Each waiting request holds the one body chunk it
# read before it asked (1 MiB here), and the app, its database driver and the test client
# up to 24 MiB more: 79 MiB more resident at peak than before, with the least budget (seven
# parts, 35 MiB). Measured: 51.8–53.3 MiB (SQLite); 55–59 MiB (SQLite, PostgreSQL) when a
# part being sealed gave its plaintext back run by run; with the least budget of eight
# parts, 38–74 and 57–72; when each part was in memory twice while sealed, 93–103 with the
# least budget of nine parts.
PEAK_BOUND = BUDGET + UPLOADS * MiB + 24 * MiB


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    KeyFile.create(data_dir / "keys.json")
    base = make_settings(data_dir, database_url)
    return base.model_copy(update={"uploads": UploadSettings(budget_mib=BUDGET // MiB)})


def piece(upload: int, index: int) -> bytes:
    return hashlib.sha256(f"{upload}/{index}".encode()).digest() * (MiB // 32)


async def body(upload: int) -> AsyncIterator[bytes]:
    for index in range(SIZE // MiB):
        yield piece(upload, index)


def digest(upload: int, name: str = "sha256") -> hashlib._Hash:
    running = hashlib.new(name)
    for index in range(SIZE // MiB):
        running.update(piece(upload, index))
    return running


async def test_twenty_patches_at_once_hold_about_the_budget(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    urls = [
        await new_upload(http, auth, world.acme_folder, SIZE, f"many-{n}.bin")
        for n in range(UPLOADS)
    ]
    documents: dict[int, str] = {}

    async def upload(n: int) -> None:
        if n < CHECKSUMMED:
            checksum = base64.b64encode(digest(n, "sha1").digest()).decode()
            done = await send(http, urls[n], auth, 0, body(n), Upload_Checksum=f"sha1 {checksum}")
        else:
            done = await send(http, urls[n], auth, 0, body(n))
        documents[n] = done.headers["document-id"]

    with peak_rss_growth() as growth:
        async with anyio.create_task_group() as tasks:
            for n in range(UPLOADS):
                tasks.start_soon(upload, n)
    assert growth() < PEAK_BOUND, f"peak {growth() / MiB:.1f} MiB"

    for n in range(UPLOADS):
        got = await download(http, auth, documents[n])
        assert hashlib.sha256(got).hexdigest() == digest(n).hexdigest(), n
