"""Retention on a seeded tree: the dry run lists exactly what the run then deletes; legal
holds block every deletion path; a shredded version cannot be decrypted from a copy of the
object store taken before it was deleted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.retention import NOW, put, seed, version_numbers
from tests.fixtures.tus import new_upload, send
from vault import accounts, crypto, holds, maintenance, quarantine, records_worker, retention
from vault.audit import AuditContext
from vault.db import transaction
from vault.errors import IntegrityError, InvalidHoldError, InvalidPolicyError
from vault.models import AuditEvent, Document, User, Version
from vault.policy import SYSTEM
from vault.quarantine_tables import HeldVersion
from vault.retention import Rules
from vault.thumbnails import Thumbnail
from vault.uploads import Upload
from web.services import Services
from web.settings import ScanSettings, Settings


def listed(
    run: retention.RetentionRun | list[retention.Doomed],
) -> list[tuple[str, str, int | None]]:
    items = run if isinstance(run, list) else run.planned
    return [(d.kind, d.name, d.version) for d in items]


async def test_dry_run_lists_exactly_what_the_run_deletes(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    expected = [
        ("version", "a.txt", 1),
        ("version", "a.txt", 2),
        ("version", "b.txt", 1),
        ("version", "b.txt", 2),
        ("document", "c.txt", None),
    ]
    dry = await retention.apply(services.sessions, services.store, dry_run=True, now=NOW)
    assert sorted(listed(dry)) == sorted(expected)
    assert dry.deleted == []
    assert await version_numbers(services) == {
        "a.txt": [1, 2, 3, 4],
        "b.txt": [1, 2, 3],
        "c.txt": [1],
        "d.txt": [1, 2],
    }
    run = await retention.apply(services.sessions, services.store, now=NOW)
    assert run.deleted == dry.planned
    assert await version_numbers(services) == {"a.txt": [3, 4], "b.txt": [3], "d.txt": [1, 2]}
    async with transaction(services.sessions) as session:
        keys = set((await session.execute(select(Version.storage_key))).scalars().all())
        shredded = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "version.shredded")
        )
        assert len(shredded.scalars().all()) == 5
    # The store holds exactly the objects of the versions left.
    assert {obj.key async for obj in services.store.list("objects/")} == keys
    again = await retention.apply(services.sessions, services.store, now=NOW)
    assert again.planned == again.deleted == []


async def test_a_shredded_version_cannot_be_decrypted_from_an_earlier_copy_of_the_store(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    tree = await seed(http, services, world)
    async with transaction(services.sessions) as session:
        first = (
            await session.execute(
                select(Version).where(Version.document_id == uuid.UUID(tree.a), Version.number == 1)
            )
        ).scalar_one()
    context = crypto.ObjectContext(world.acme, uuid.UUID(tree.a), first.id)
    # The backup: the object's bytes as the store held them before retention ran.
    backup = b"".join([piece async for piece in services.store.read(first.storage_key)])
    dek = services.keyring.unwrap(first.kek_id, first.wrapped_dek)
    assert crypto.decrypt_object(backup, context, dek) == b"a.txt version 1 " * 50
    del dek  # what an attacker with the database and keys after the run does not have

    await retention.apply(services.sessions, services.store, now=NOW)

    async with transaction(services.sessions) as session:
        assert await session.get(Version, first.id) is None
        wrapped = [
            (v.kek_id, v.wrapped_dek)
            for v in (await session.execute(select(Version))).scalars().all()
        ] + [
            (u.kek_id, u.wrapped_dek)
            for u in (await session.execute(select(Upload))).scalars().all()
        ]
    assert wrapped
    # No data key left anywhere decrypts the copy: the version is gone for good.
    for kek_id, key in wrapped:
        with pytest.raises(IntegrityError):
            crypto.decrypt_object(backup, context, services.keyring.unwrap(kek_id, key))
    assert first.storage_key not in {obj.key async for obj in services.store.list("objects/")}


class TestVersionsThatWentThroughQuarantine:
    """Every upload is held for a scan; staff release them (no scanner here)."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        scan = ScanSettings(all_uploads=True, worker=False)
        return settings.model_copy(update={"scan": scan})

    async def test_a_shredded_version_leaves_no_key_in_any_table(
        self, http: httpx.AsyncClient, services: Services, world: World
    ) -> None:
        auth = world["sam"].auth
        first = b"held, then released, then shredded " * 40
        url = await new_upload(http, auth, world.acme_folder, len(first), "q.txt")
        answer = await send(http, url, auth, 0, first)
        assert answer.headers["document-scan"] == "pending"
        async with transaction(services.sessions) as session:
            user = await session.get_one(User, world["sam"].id)
            staff = await accounts.principal_for(session, user)
        for content in (b"the second version", None):
            [row] = await _held(services)
            async with transaction(services.sessions) as session:
                await quarantine.release(
                    session, staff, AuditContext(actor_role="staff"), row.version_id
                )
            if content is not None:
                second = await http.put(
                    f"/api/v1/folders/{world.acme_folder}/files/q.txt",
                    content=content,
                    headers=auth,
                )
                assert second.status_code == 202, second.text
        async with transaction(services.sessions) as session:
            version = (
                await session.execute(
                    select(Version).where(
                        Version.document_id == uuid.UUID(answer.headers["document-id"]),
                        Version.number == 1,
                    )
                )
            ).scalar_one()
        context = crypto.ObjectContext(world.acme, version.document_id, version.id)
        backup = b"".join([piece async for piece in services.store.read(version.storage_key)])
        dek = services.keyring.unwrap(version.kek_id, version.wrapped_dek)
        assert crypto.decrypt_object(backup, context, dek) == first
        del dek
        async with transaction(services.sessions) as session:
            await retention.set_policy(
                session,
                SYSTEM,
                TEST_CONTEXT,
                world.acme,
                folder_id=None,
                rules=Rules(keep_versions=1),
            )

        run = await retention.apply(services.sessions, services.store)
        assert [(d.name, d.version) for d in run.deleted] == [("q.txt", 1)]

        async with transaction(services.sessions) as session:
            assert await session.get(Version, version.id) is None
            wrapped: list[tuple[str | None, bytes | None]] = []
            for table in (Version, HeldVersion, Upload, Thumbnail):
                keys = await session.execute(select(table.kek_id, table.wrapped_dek))
                wrapped += [(kek_id, key) for kek_id, key in keys.all()]
        # One key is left: the second version's, in its own row (its quarantine row gave
        # its copy up when it was published).
        assert len([w for _, w in wrapped if w is not None]) == 1
        for kek_id, key in wrapped:
            if key is None:
                continue
            assert kek_id is not None
            with pytest.raises(IntegrityError):
                crypto.decrypt_object(backup, context, services.keyring.unwrap(kek_id, key))
        assert version.storage_key not in {o.key async for o in services.store.list("objects/")}

    async def test_a_discarded_held_version_keeps_no_key(
        self, http: httpx.AsyncClient, services: Services, world: World
    ) -> None:
        auth = world["sam"].auth
        url = await new_upload(http, auth, world.acme_folder, 300, "drop.txt")
        await send(http, url, auth, 0, b"d" * 300)
        [row] = await _held(services)
        assert row.wrapped_dek is not None
        async with transaction(services.sessions) as session:
            user = await session.get_one(User, world["sam"].id)
            staff = await accounts.principal_for(session, user)
            key = await quarantine.discard(
                session, staff, AuditContext(actor_role="staff"), row.version_id
            )
        async with transaction(services.sessions) as session:
            gone = await session.get_one(HeldVersion, row.version_id)
            assert gone.deleted_at is not None
            assert (gone.kek_id, gone.wrapped_dek, gone.header) == (None, None, None)
            # The finished upload's row kept a copy of the key too.
            uploads = (await session.execute(select(Upload))).scalars().all()
            assert [u for u in uploads if u.version_id == row.version_id] == []
        assert key == row.storage_key


async def _held(services: Services) -> list[HeldVersion]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(HeldVersion).where(col(HeldVersion.published_version).is_(None))
        )
        return sorted(rows.scalars().all(), key=lambda r: r.created_at)


async def test_a_hold_on_a_folder_suspends_retention_under_it_until_released(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    tree = await seed(http, services, world)
    async with transaction(services.sessions) as session:
        hold = await holds.place_hold(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=tree.old, reason="Case 12"
        )
    run = await retention.apply(services.sessions, services.store, now=NOW)
    assert ("version", "b.txt", 1) not in listed(run)
    assert (await version_numbers(services))["b.txt"] == [1, 2, 3]
    assert (await version_numbers(services))["a.txt"] == [3, 4]
    async with transaction(services.sessions) as session:
        await holds.release_hold(session, SYSTEM, TEST_CONTEXT, hold.id, reason="Case closed")
    await retention.apply(services.sessions, services.store, now=NOW)
    assert (await version_numbers(services))["b.txt"] == [3]


async def test_a_hold_on_the_client_suspends_the_trash_purge(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    tree = await seed(http, services, world)
    async with transaction(services.sessions) as session:
        await holds.place_hold(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, reason="Audit 2026"
        )
    run = await retention.apply(services.sessions, services.store, now=NOW)
    assert run.planned == run.deleted == []
    async with transaction(services.sessions) as session:
        assert await session.get(Document, uuid.UUID(tree.c)) is not None
    assert (await version_numbers(services))["c.txt"] == [1]


async def test_a_hold_blocks_manual_delete_by_api(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    document_id = await put(http, world, world.acme_folder, "keep.txt", 1)
    async with transaction(services.sessions) as session:
        hold = await holds.place_hold(
            session,
            SYSTEM,
            TEST_CONTEXT,
            world.acme,
            folder_id=world.acme_folder,
            reason="Litigation",
        )
    response = await http.delete(f"/api/v1/documents/{document_id}", headers=world["sam"].auth)
    assert response.status_code == 409
    assert response.json()["title"] == "Legal hold"
    async with transaction(services.sessions) as session:
        document = await session.get(Document, uuid.UUID(document_id))
        assert document is not None and document.deleted_at is None
        await holds.release_hold(session, SYSTEM, TEST_CONTEXT, hold.id, reason="Settled")
    response = await http.delete(f"/api/v1/documents/{document_id}", headers=world["sam"].auth)
    assert response.status_code == 204


async def test_a_hold_keeps_even_unreferenced_objects_from_gc(
    services: Services, world: World
) -> None:
    orphans = {c: f"objects/{c}/{uuid.uuid4()}" for c in (world.acme, world.globex)}
    for key in orphans.values():
        upload_id = await services.store.create_multipart(key)
        etag = await services.store.upload_part(key, upload_id, 1, b"orphan")
        await services.store.complete_multipart(key, upload_id, [(1, etag)])
    async with transaction(services.sessions) as session:
        hold = await holds.place_hold(
            session,
            SYSTEM,
            TEST_CONTEXT,
            world.acme,
            folder_id=world.acme_folder,
            reason="Regulator",
        )
    later = NOW + timedelta(days=30)
    collected = await maintenance.collect_garbage(
        services.sessions, services.store, grace=timedelta(hours=1), now=later
    )
    assert (collected.objects_deleted, collected.objects_held) == (1, 1)
    keys = {obj.key async for obj in services.store.list("objects/")}
    assert keys == {orphans[world.acme]}
    async with transaction(services.sessions) as session:
        await holds.release_hold(session, SYSTEM, TEST_CONTEXT, hold.id, reason="Done")
    collected = await maintenance.collect_garbage(
        services.sessions, services.store, grace=timedelta(hours=1), now=later
    )
    assert collected.objects_deleted == 1
    assert {obj.key async for obj in services.store.list("objects/")} == set()


async def test_holds_and_policies_need_an_administrator_and_a_reason(
    services: Services, world: World
) -> None:
    async with transaction(services.sessions) as session:
        with pytest.raises(InvalidHoldError):
            await holds.place_hold(
                session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, reason="  "
            )
        hold = await holds.place_hold(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, reason="Why  not"
        )
        with pytest.raises(InvalidHoldError):
            await holds.release_hold(session, SYSTEM, TEST_CONTEXT, hold.id, reason="")
        with pytest.raises(InvalidPolicyError):
            await retention.set_policy(
                session,
                SYSTEM,
                TEST_CONTEXT,
                world.acme,
                folder_id=None,
                rules=Rules(keep_versions=-1),
            )
        events = await session.execute(select(AuditEvent).where(AuditEvent.action == "hold.placed"))
        placed = events.scalars().one()
    assert '"reason":"Why not"' in placed.details


async def test_one_process_per_interval_claims_the_worker_pass(services: Services) -> None:
    start = 1_000_000.0
    claims = [
        await records_worker.claim_pass(services.sessions, interval_seconds=600, now=start + t)
        for t in (0, 1, 599)
    ]
    assert claims == [True, False, False]
    assert await records_worker.claim_pass(services.sessions, interval_seconds=600, now=start + 600)


async def test_the_worker_pass_applies_retention(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    done = await records_worker.run_once(services.sessions, services.store, default_quota=0)
    assert sorted(listed(done.deleted)) == sorted(listed(done.planned))
    assert (await version_numbers(services))["a.txt"] == [3, 4]


async def test_a_policy_relaxed_after_the_plan_keeps_what_it_now_keeps(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    async with transaction(services.sessions) as session:
        planned = await retention.plan(session, now=NOW)
        await retention.set_policy(
            session,
            SYSTEM,
            TEST_CONTEXT,
            world.acme,
            folder_id=None,
            rules=Rules(keep_versions=0, trash_days=30),
        )
    assert ("version", "a.txt", 1) in listed(planned)
    run = await retention.apply(services.sessions, services.store, now=NOW, items=planned)
    # a.txt now keeps every version; "Old" keeps its own rule (only the current version).
    assert sorted(listed(run.deleted)) == [
        ("document", "c.txt", None),
        ("version", "b.txt", 1),
        ("version", "b.txt", 2),
    ]
    assert (await version_numbers(services))["a.txt"] == [1, 2, 3, 4]


async def test_a_hold_placed_after_the_plan_stops_its_deletions(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    async with transaction(services.sessions) as session:
        planned = await retention.plan(session, now=NOW)
        await holds.place_hold(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, reason="Late subpoena"
        )
    run = await retention.apply(services.sessions, services.store, now=NOW, items=planned)
    assert len(planned) == 5 and run.deleted == []
    assert (await version_numbers(services))["a.txt"] == [1, 2, 3, 4]


async def test_two_processes_applying_at_once_delete_each_item_once(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    first, second = await asyncio.gather(
        retention.apply(services.sessions, services.store, now=NOW),
        retention.apply(services.sessions, services.store, now=NOW),
    )
    # Whether the second planned before or after the first deleted, nothing goes twice.
    planned = first.planned if len(first.planned) >= len(second.planned) else second.planned
    assert len(planned) == 5
    assert sorted(listed(first.deleted + second.deleted)) == sorted(listed(planned))
    async with transaction(services.sessions) as session:
        shredded = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "version.shredded")
        )
        assert len(shredded.scalars().all()) == 5
