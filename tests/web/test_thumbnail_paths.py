"""Versions are queued for their thumbnails on every path that stores one: a tus upload when
it finishes, and an upload held in quarantine only once it is released (never while held)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.documents import upload
from tests.fixtures.quarantine import held_rows, scan_all
from tests.fixtures.thumbnails import png
from tests.fixtures.tus import new_upload, send
from vault import scanning
from vault.db import transaction
from vault.models import Version
from vault.thumbnail_jobs import ThumbnailJob
from web.services import Services
from web.settings import ScanSettings, Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every upload is held until scanned; the test scans (without a scanner, published).
    scan = ScanSettings(all_uploads=True, worker=False)
    return settings.model_copy(update={"scan": scan})


async def queued(services: Services) -> list[tuple[str, int]]:
    """The queued versions' content types and numbers."""
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(Version.content_type, Version.number).join(
                ThumbnailJob, col(ThumbnailJob.version_id) == col(Version.id)
            )
        )
        return sorted((row[0], row[1]) for row in rows.all())


async def test_a_held_upload_is_queued_once_released_and_a_tus_upload_when_it_ends(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    auth = world["alice"].auth
    await upload(http, auth, world.acme_folder, "held.png", png(60, 60), expect=202)
    assert [row.published_version for row in await held_rows(services)] == [None]
    assert await queued(services) == []  # held: no version yet, nothing to draw
    await scan_all(services, settings, scanner=None, unscanned=scanning.Unscanned.PUBLISH)
    assert await queued(services) == [("image/png", 1)]

    data = png(200, 200, noise=True)  # more than one 64 KiB segment
    url = await new_upload(http, auth, world.acme_folder, len(data), "resumed.png")
    await send(http, url, auth, 0, data[:65536])
    assert await queued(services) == [("image/png", 1)]  # not before the last byte
    await send(http, url, auth, 65536, data[65536:])
    await scan_all(services, settings, scanner=None, unscanned=scanning.Unscanned.PUBLISH)
    assert await queued(services) == [("image/png", 1), ("image/png", 1)]
