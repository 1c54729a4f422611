"""`vault.fsck.check_store` against both object stores and both databases."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.fixtures.app import World, on_each_store
from tests.fixtures.fsck import flip_byte, key_of, put_object, read_object, upload
from vault import fsck
from vault.audit import AuditContext
from vault.crypto import HEADER_SIZE
from vault.db import transaction
from vault.models import AuditEvent, Document, Version
from web.services import Services
from web.settings import Settings

CONTEXT = AuditContext(actor_role="test")
NOW = timedelta(0)  # an orphan grace of nothing: report even objects made a moment ago


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_each_store(request, settings)


async def run(services: Services, **kwargs: object) -> tuple[fsck.FsckReport, list[fsck.Problem]]:
    found: list[fsck.Problem] = []
    report = await fsck.check_store(
        services.sessions,
        services.store,
        services.keyring,
        CONTEXT,
        on_problem=found.append,
        orphan_grace=NOW,
        **kwargs,  # type: ignore[arg-type]
    )
    return report, sorted(found, key=lambda p: (p.kind, p.key))


async def checked_events(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "storage.checked")
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


async def test_a_healthy_store_is_clean_and_the_check_is_audited(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await upload(http, world, "a.txt", b"first")
    await upload(http, world, "a.txt", b"second version, longer" * 5000)
    await upload(http, world, "b.txt", b"", who="bob")
    for deep in (False, True):
        report, problems = await run(services, deep=deep)
        assert problems == []
        assert report.clean
        assert (report.versions, report.objects) == (3, 3)
    events = await checked_events(services)
    assert [json.loads(e.details) for e in events] == [
        {"deep": False, "versions": 3, "objects": 3, "thumbnails": 0, "problems": {}},
        {"deep": True, "versions": 3, "objects": 3, "thumbnails": 0, "problems": {}},
    ]
    assert {e.outcome for e in events} == {"success"}


async def test_corrupted_missing_and_orphan_objects_are_named(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    store = services.store
    header_hit = await key_of(services, await upload(http, world, "h.txt", b"header" * 100))
    body_hit = await key_of(services, await upload(http, world, "b.txt", b"body" * 100))
    gone = await key_of(services, await upload(http, world, "g.txt", b"gone"))
    short = await key_of(services, await upload(http, world, "s.txt", b"short" * 100))
    await upload(http, world, "fine.txt", b"fine")
    await flip_byte(store, header_hit, 40)  # inside the ids the header binds
    await flip_byte(store, body_hit, HEADER_SIZE + 10)  # ciphertext: only decryption sees it
    await store.delete(gone)
    await put_object(store, short, (await read_object(store, short))[:-1])
    orphan = f"objects/{world.acme}/{uuid.uuid4()}"
    await put_object(store, orphan, b"left behind by a crashed upload")

    report, problems = await run(services)
    assert [(p.kind, p.key) for p in problems] == [
        (fsck.HEADER, header_hit),
        (fsck.MISSING, gone),
        (fsck.ORPHAN, orphan),
        (fsck.SIZE, short),
    ]
    assert all(p.version_id and p.number == 1 for p in problems if p.kind != fsck.ORPHAN)
    assert (report.versions, report.objects) == (5, 5)

    report, problems = await run(services, deep=True)
    assert [(p.kind, p.key) for p in problems if p.kind == fsck.CONTENT] == [
        (fsck.CONTENT, body_hit)
    ]
    assert "authentication" in next(p.detail for p in problems if p.kind == fsck.CONTENT)
    assert dict(report.problems) == {
        "content": 1,
        "header": 1,
        "missing": 1,
        "orphan": 1,
        "size": 1,
    }
    event = (await checked_events(services))[-1]
    assert event.outcome == "error"
    assert json.loads(event.details)["problems"] == dict(report.problems)


async def test_a_digest_that_does_not_match_is_found_only_by_a_deep_check(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await upload(http, world, "a.txt", b"some bytes")
    async with transaction(services.sessions) as session:
        await session.execute(
            update(Version)
            .where(col(Version.document_id) == uuid.UUID(document_id))
            .values(sha256="0" * 64)
        )
    assert (await run(services))[1] == []
    _, problems = await run(services, deep=True)
    assert [(p.kind, p.document_id) for p in problems] == [(fsck.CONTENT, document_id)]
    assert "SHA-256" in problems[0].detail


async def test_a_data_key_under_an_unknown_kek_is_named(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    key = await key_of(services, await upload(http, world, "a.txt", b"some bytes"))
    async with transaction(services.sessions) as session:
        await session.execute(
            update(Version).where(col(Version.storage_key) == key).values(kek_id="kek-lost")
        )
    _, problems = await run(services)
    assert [(p.kind, p.key) for p in problems] == [(fsck.KEY, key)]


async def test_client_limits_the_scan(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await upload(http, world, "a.txt", b"acme's")
    globex_key = await key_of(services, await upload(http, world, "g.txt", b"globex's", who="bob"))
    await services.store.delete(globex_key)
    await put_object(services.store, f"objects/{world.globex}/{uuid.uuid4()}", b"orphan")

    report, problems = await run(services, client_id=world.acme)
    assert problems == [] and (report.versions, report.objects) == (1, 1)
    event = (await checked_events(services))[-1]
    assert event.client_id == str(world.acme)

    report, problems = await run(services, client_id=world.globex)
    assert {p.kind for p in problems} == {fsck.MISSING, fsck.ORPHAN}
    assert report.versions == 1


async def test_young_orphans_and_live_uploads_are_left_alone(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    young = f"objects/{world.acme}/{uuid.uuid4()}"
    await put_object(services.store, young, b"a version about to commit")
    report = await fsck.check_store(
        services.sessions, services.store, services.keyring, CONTEXT
    )  # the default grace
    assert report.clean and report.skipped_recent == 1


async def test_many_versions_stream_in_small_batches(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    """Batches and concurrency smaller than the data: every version is still seen once."""
    keys = [
        await key_of(services, await upload(http, world, f"{i}.txt", b"x" * i)) for i in range(7)
    ]
    await services.store.delete(keys[3])
    async with transaction(services.sessions) as session:
        documents = (await session.execute(select(Document))).scalars().all()
        assert len(documents) == 7
    report, problems = await run(services, batch=2, concurrency=1)
    assert (report.versions, report.objects) == (7, 6)
    assert [(p.kind, p.key) for p in problems] == [(fsck.MISSING, keys[3])]
