"""Thumbnails drawn ahead by the worker: queued as versions are stored, drawn once (also with
two workers), an undrawable file recorded once and left alone, and folder listings showing
a thumbnail only where one is stored. Then fsck, gc and retention over them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from alembic import command
from sqlalchemy import update
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.documents import put
from tests.fixtures.fsck import flip_byte, put_object
from tests.fixtures.signin import sign_in
from tests.fixtures.thumbnails import pdf, png
from vault import fsck, retention, thumbnail_jobs, thumbnail_worker, thumbnails
from vault.db import alembic_config, transaction
from vault.maintenance import collect_garbage
from vault.models import Document, Version
from vault.policy import SYSTEM
from vault.retention import Rules
from vault.thumbnail_jobs import ThumbnailJob
from vault.thumbnails import Thumbnail
from web.services import Services

CSV = b"date,amount\n2026-01-02,10.00\n"
NOT_A_PNG = b"\x89PNG\r\n\x1a\n" + b"nothing an image decoder can read" * 20


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The media types drawn, one entry per drawing (the real drawing code runs)."""
    drawn: list[str] = []
    real = thumbnails.render

    def counting(data: bytes, content_type: str) -> object:
        drawn.append(content_type)
        return real(data, content_type)

    monkeypatch.setattr(thumbnails, "render", counting)
    return drawn


async def work(services: Services, *, max_bytes: int | None = None) -> None:
    """One worker's pass over everything due now, as each app process runs it."""
    await thumbnail_worker.run(
        services.sessions,
        services.store,
        services.keyring,
        max_bytes=max_bytes or services.thumbnail_max_bytes,
        part_size=services.part_size,
        limiter=services.thumbnail_limiter,
        once=True,
    )


async def jobs(services: Services) -> list[ThumbnailJob]:
    async with transaction(services.sessions) as session:
        return list((await session.execute(select(ThumbnailJob))).scalars().all())


async def recorded(services: Services) -> dict[str, Thumbnail]:
    """The thumbnail rows, by the name of the document they show."""
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(Document.name, Thumbnail)
            .join(Version, col(Version.id) == col(Thumbnail.version_id))
            .join(Document, col(Document.id) == col(Version.document_id))
        )
        return {row[0]: row[1] for row in rows.all()}


async def four_files(http: httpx.AsyncClient, world: World) -> dict[str, str]:
    folder = world.acme_folder
    return {
        "photo.png": await put(http, world, "alice", folder, "photo.png", png(300, 200)),
        "scan.pdf": await put(http, world, "alice", folder, "scan.pdf", pdf(400, 300)),
        "ledger.csv": await put(http, world, "alice", folder, "ledger.csv", CSV),
        "broken.png": await put(http, world, "alice", folder, "broken.png", NOT_A_PNG),
    }


def row_of(listing: str, document_id: str) -> str:
    return listing.split(f'href="/documents/{document_id}"', 1)[1].split("</th>", 1)[0]


async def test_the_worker_draws_images_and_pdfs_skips_a_csv_and_fails_a_broken_png_once(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    docs = await four_files(http, world)
    # Queued as they were stored; a CSV has no thumbnail to draw.
    assert len(await jobs(services)) == 3
    assert renders == []

    await work(services)
    assert sorted(renders) == ["application/pdf", "image/png", "image/png"]
    assert await jobs(services) == []
    rows = await recorded(services)
    assert set(rows) == {"photo.png", "scan.pdf", "broken.png"}
    for name in ("photo.png", "scan.pdf"):
        assert rows[name].storage_key and rows[name].failure is None and rows[name].size > 0
    assert rows["broken.png"].storage_key is None
    assert "cannot be drawn" in (rows["broken.png"].failure or "")

    # Stored encrypted: no object holds the WebP's signature in the clear.
    async for obj in services.store.list(thumbnails.PREFIX):
        data = b"".join([piece async for piece in services.store.read(obj.key)])
        assert b"WEBP" not in data

    # Queued again (a restore, an operator), the failed one is not drawn a second time, nor
    # is it on request; the drawn ones are served from the store.
    async with transaction(services.sessions) as session:
        for version_id in [row.version_id for row in rows.values()]:
            session.add(ThumbnailJob(version_id=version_id))
    await work(services)
    await sign_in(http, world["alice"], second_factor=True)
    assert (await http.get(f"/documents/{docs['broken.png']}/thumbnail")).status_code == 404
    for name in ("photo.png", "scan.pdf"):
        shown = await http.get(f"/documents/{docs[name]}/thumbnail?version=1")
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/webp"
    assert len(renders) == 3
    assert await jobs(services) == []


async def test_the_listing_offers_a_thumbnail_only_once_it_is_drawn(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    docs = await four_files(http, world)
    await sign_in(http, world["alice"], second_factor=True)
    before = (await http.get(f"/folders/{world.acme_folder}")).text
    assert "<img" not in before.split("<tbody>", 1)[1]  # nothing drawn yet: icons only

    await work(services)
    listing = (await http.get(f"/folders/{world.acme_folder}")).text
    for name in ("photo.png", "scan.pdf"):
        row = row_of(listing, docs[name])
        src = f"/documents/{docs[name]}/thumbnail?version=1"
        page = " ficon-thumb--page" if name.endswith(".pdf") else ""
        assert f'<img class="ficon-thumb{page}" src="{src}" alt=""' in row
        assert 'width="28" height="28" loading="lazy"' in row
        assert '<svg class="ficon' not in row
        assert (await http.get(src)).status_code == 200
    for name in ("ledger.csv", "broken.png"):
        row = row_of(listing, docs[name])
        assert "<img" not in row and '<svg class="ficon' in row

    # A new version not drawn yet: the icon again, never the old version's picture.
    await put(http, world, "alice", world.acme_folder, "photo.png", png(120, 60))
    listing = (await http.get(f"/folders/{world.acme_folder}")).text
    assert "<img" not in row_of(listing, docs["photo.png"])
    await work(services)
    listing = (await http.get(f"/folders/{world.acme_folder}")).text
    assert f'src="/documents/{docs["photo.png"]}/thumbnail?version=2"' in listing


async def test_two_workers_draw_each_version_once_and_a_dead_one_s_job_is_taken_over(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    for n in range(4):
        await put(http, world, "alice", world.acme_folder, f"p{n}.png", png(50 + n, 40))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(work, services)
        tasks.start_soon(work, services)
    assert renders == ["image/png"] * 4
    assert len([r for r in (await recorded(services)).values() if r.storage_key]) == 4

    # A worker that claimed a job and died: nobody takes it until its lease runs out.
    await put(http, world, "alice", world.acme_folder, "late.png", png(64, 64))
    dead = await thumbnail_jobs.claim(services.sessions, lease=timedelta(minutes=5))
    assert dead is not None
    await work(services)
    assert len(renders) == 4
    async with transaction(services.sessions) as session:
        await session.execute(
            update(ThumbnailJob).values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await work(services)
    assert len(renders) == 5 and await jobs(services) == []
    await thumbnail_jobs.finish(services.sessions, dead)  # the dead one's late word: harmless

    # A job claimed again and again without an outcome (its drawing kills the process) is
    # recorded as failed, not tried once more.
    await put(http, world, "alice", world.acme_folder, "killer.png", png(64, 64))
    async with transaction(services.sessions) as session:
        await session.execute(update(ThumbnailJob).values(attempts=thumbnail_worker.MAX_ATTEMPTS))
    await work(services)
    assert len(renders) == 5
    assert "gave up" in ((await recorded(services))["killer.png"].failure or "")


async def test_a_version_past_the_limit_is_left_for_the_document_page(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    big = png(700, 700, noise=True)
    assert len(big) > 1024 * 1024
    await put(http, world, "alice", world.acme_folder, "big.png", big)
    await work(services, max_bytes=1024 * 1024)
    # Nothing recorded: should the limit be raised, the document page draws it on request.
    assert renders == [] and await jobs(services) == [] and await recorded(services) == {}


async def test_retention_shreds_queued_and_drawn_thumbnails_and_fsck_checks_them(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "kept.png", png(100, 100))
    await put(http, world, "alice", world.acme_folder, "kept.png", png(120, 60))
    await work(services)
    other = await put(http, world, "alice", world.acme_folder, "other.pdf", pdf(300, 300))
    # Versions 3 and 4 still queued when retention keeps only the newest: version 3's job
    # goes with versions 1 and 2 and their thumbnails, rows and objects.
    await put(http, world, "alice", world.acme_folder, "kept.png", png(90, 90))
    await put(http, world, "alice", world.acme_folder, "kept.png", png(70, 70))
    async with transaction(services.sessions) as session:
        await retention.set_policy(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, rules=Rules(keep_versions=1)
        )
    run = await retention.apply(services.sessions, services.store)
    shredded = {d.version for d in run.deleted if d.document_id == uuid.UUID(doc)}
    assert shredded == {1, 2, 3}
    assert len(await jobs(services)) == 2  # version 4's and the PDF's
    await work(services)
    rows = await recorded(services)
    assert set(rows) == {"kept.png", "other.pdf"}
    keys = [obj.key async for obj in services.store.list(thumbnails.PREFIX)]
    assert set(keys) == {r.storage_key for r in rows.values()}

    found: list[fsck.Problem] = []
    report = await fsck.check_store(
        services.sessions,
        services.store,
        services.keyring,
        TEST_CONTEXT,
        deep=True,
        orphan_grace=timedelta(0),
        on_problem=found.append,
    )
    assert report.clean and report.thumbnails == 2 and found == []

    # Damage each way fsck names: a missing object, a damaged header, an orphan.
    kept_key, other_key = rows["kept.png"].storage_key, rows["other.pdf"].storage_key
    assert kept_key and other_key
    await services.store.delete(kept_key)
    await flip_byte(services.store, other_key, 40)
    orphan = f"{thumbnails.PREFIX}{world.acme}/{uuid.uuid4()}/{uuid.uuid4()}"
    await put_object(services.store, orphan, b"a thumbnail whose version was purged")
    found.clear()
    report = await fsck.check_store(
        services.sessions,
        services.store,
        services.keyring,
        TEST_CONTEXT,
        orphan_grace=timedelta(0),
        on_problem=found.append,
    )
    assert sorted((p.kind, p.key) for p in found) == sorted(
        [(fsck.MISSING, kept_key), (fsck.HEADER, other_key), (fsck.ORPHAN, orphan)]
    )
    assert next(p for p in found if p.kind == fsck.HEADER).document_id == other
    assert report.versions == report.objects == 2

    # gc deletes the orphan; the rest is for an operator (or the next request redraws).
    collected = await collect_garbage(services.sessions, services.store, grace=timedelta(0))
    assert collected.objects_deleted == 1
    assert orphan not in [obj.key async for obj in services.store.list(thumbnails.PREFIX)]


async def test_the_migration_queues_versions_stored_before_it(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await put(http, world, "alice", world.acme_folder, "old.png", png(80, 80))
    await put(http, world, "alice", world.acme_folder, "old.csv", CSV)
    await put(http, world, "alice", world.acme_folder, "drawn.pdf", pdf(200, 200))
    await work(services)
    image = await put(http, world, "alice", world.acme_folder, "old.png", png(81, 81))
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0021"))
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    # Only the image's new version: the CSV has no thumbnail, the others are drawn.
    [queued] = await jobs(services)
    async with transaction(services.sessions) as session:
        version = await session.get(Version, queued.version_id)
    assert version is not None and str(version.document_id) == image and version.number == 2


async def test_a_restored_database_has_its_thumbnails_drawn_again(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    await four_files(http, world)
    await work(services)
    before = await recorded(services)
    # As `clientvault restore` leaves it: the rows came back, the objects (never backed up)
    # did not.
    async for obj in services.store.list(thumbnails.PREFIX):
        await services.store.delete(obj.key)
    async with transaction(services.sessions) as session:
        assert await thumbnails.redraw_all(session) == 2
    assert set(await recorded(services)) == {"broken.png"}  # the failure stays known
    await work(services)
    after = await recorded(services)
    assert set(after) == set(before) and len(renders) == 5
    assert after["photo.png"].storage_key != before["photo.png"].storage_key
