"""Housekeeping: garbage collection of stored objects, and re-wrapping data keys."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from vault import audit, maintenance
from vault.crypto.keyring import KeyFile, Keyring, KeySource
from vault.db import transaction
from vault.models import AuditEvent, Version
from vault.store import ObjectStore
from web.services import Services

GRACE = timedelta(days=1)
FAR_FUTURE = datetime.now(UTC) + timedelta(days=365)


async def _put_object(store: ObjectStore, key: str, data: bytes) -> None:
    upload_id = await store.create_multipart(key)
    etag = await store.upload_part(key, upload_id, 1, data)
    await store.complete_multipart(key, upload_id, [(1, etag)])


async def _upload(http: httpx.AsyncClient, world: World, name: str, content: bytes) -> str:
    response = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/{name}",
        content=content,
        headers=world["alice"].auth,
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def _download(http: httpx.AsyncClient, world: World, document_id: str) -> bytes:
    response = await http.get(
        f"/api/v1/documents/{document_id}/content", headers=world["alice"].auth
    )
    assert response.status_code == 200, response.text
    return response.content


async def _versions(services: Services) -> list[Version]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(select(Version).order_by(col(Version.created_at)))
        return list(rows.scalars().all())


async def _events(services: Services, action: str) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


async def _chain_ok(services: Services) -> bool:
    async with transaction(services.sessions) as session:
        return (await audit.verify(session)).ok


async def _keys(store: ObjectStore) -> set[str]:
    return {obj.key async for obj in store.list("objects/")}


def _age(services: Services, key: str, by: timedelta) -> None:
    """Make a local object look older than it is."""
    path = Path(services.settings.objects_path, *key.split("/"))
    moment = (datetime.now(UTC) - by).timestamp()
    os.utime(path, (moment, moment))


# --- collect_garbage ---------------------------------------------------------------------------


async def test_collect_garbage(http: httpx.AsyncClient, world: World, services: Services) -> None:
    store = services.store
    live = await _upload(http, world, "live.txt", b"live")
    trashed = await _upload(http, world, "trashed.txt", b"trashed")
    deleted = await http.delete(f"/api/v1/documents/{trashed}", headers=world["sam"].auth)
    assert deleted.status_code == 204
    referenced = {v.storage_key for v in await _versions(services)}
    assert len(referenced) == 2
    for key in referenced:
        _age(services, key, 10 * GRACE)  # old, but a version refers to it

    old_orphan = f"objects/{world.acme}/{uuid.uuid4()}"
    fresh_orphan = f"objects/{world.acme}/{uuid.uuid4()}"
    await _put_object(store, old_orphan, b"left behind by a crashed upload")
    await _put_object(store, fresh_orphan, b"an upload about to commit")
    _age(services, old_orphan, 2 * GRACE)
    pending_key = f"objects/{world.acme}/{uuid.uuid4()}"
    pending = await store.create_multipart(pending_key)
    await store.upload_part(pending_key, pending, 1, b"part")

    result = await maintenance.collect_garbage(services.sessions, store, grace=GRACE)
    assert result == maintenance.CollectedGarbage(objects_deleted=1, uploads_aborted=0)
    assert await _keys(store) == referenced | {fresh_orphan}
    assert [u.upload_id for u in await store.list_multipart_uploads("objects/")] == [pending]
    events = await _events(services, "storage.collected")
    assert len(events) == 1
    assert json.loads(events[0].details) == {"objects_deleted": 1, "uploads_aborted": 0}
    assert events[0].actor_role == "system" and events[0].actor_id is None

    # Much later, everything unreferenced is stale; what versions refer to still stays.
    result = await maintenance.collect_garbage(
        services.sessions, store, grace=GRACE, now=FAR_FUTURE
    )
    assert result == maintenance.CollectedGarbage(objects_deleted=1, uploads_aborted=1)
    assert await _keys(store) == referenced
    assert await store.list_multipart_uploads("objects/") == []
    events = await _events(services, "storage.collected")
    assert [json.loads(e.details) for e in events] == [
        {"objects_deleted": 1, "uploads_aborted": 0},
        {"objects_deleted": 1, "uploads_aborted": 1},
    ]
    assert await _download(http, world, live) == b"live"
    assert await _chain_ok(services)

    # Nothing left to collect: nothing deleted, nothing recorded.
    result = await maintenance.collect_garbage(
        services.sessions, store, grace=GRACE, now=FAR_FUTURE
    )
    assert result == maintenance.CollectedGarbage(objects_deleted=0, uploads_aborted=0)
    assert await _keys(store) == referenced


async def test_collect_garbage_keeps_what_is_within_the_grace(services: Services) -> None:
    store = services.store
    key = f"objects/{uuid.uuid4()}/{uuid.uuid4()}"
    await _put_object(store, key, b"x")
    upload_key = f"objects/{uuid.uuid4()}/{uuid.uuid4()}"
    await store.create_multipart(upload_key)
    # Seen from an hour ago, both are younger than any grace: they stay.
    past = datetime.now(UTC) - timedelta(hours=1)
    result = await maintenance.collect_garbage(services.sessions, store, grace=GRACE, now=past)
    assert result == maintenance.CollectedGarbage(0, 0)
    result = await maintenance.collect_garbage(services.sessions, store, grace=timedelta(0))
    assert result == maintenance.CollectedGarbage(1, 1)
    assert await _keys(store) == set()


# --- rewrap_all --------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


class FlakyKeyring(Keyring):
    """A keyring whose re-wrapping fails after `fail_after` keys: an interrupted run."""

    def __init__(self, source: KeySource, fail_after: int) -> None:
        super().__init__(source)
        self.remaining = fail_after

    def rewrap(self, kek_id: str, wrapped: bytes) -> tuple[str, bytes]:
        if self.remaining == 0:
            raise Interrupted
        self.remaining -= 1
        return super().rewrap(kek_id, wrapped)


async def test_rewrap_all_is_idempotent_and_interruptible(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    by_document: dict[str, bytes] = {}
    for i in range(5):
        content = os.urandom(1000 + i)
        by_document[await _upload(http, world, f"f{i}.bin", content)] = content
    old_id = services.keyring.active_id
    before = {v.id: v for v in await _versions(services)}
    assert {v.kek_id for v in before.values()} == {old_id}

    assert await maintenance.rewrap_all(services.sessions, services.keyring) == 0
    assert await _events(services, "keys.rewrapped") == []

    new_id = services.keyring.rotate()
    flaky = FlakyKeyring(KeyFile(services.settings.keys_path), fail_after=3)
    with pytest.raises(Interrupted):
        await maintenance.rewrap_all(services.sessions, flaky, batch=2)
    # The first batch committed; the second failed part-way and rolled back as a whole.
    partial = await _versions(services)
    assert sorted(v.kek_id for v in partial) == sorted([new_id] * 2 + [old_id] * 3)

    assert await maintenance.rewrap_all(services.sessions, services.keyring, batch=2) == 3
    assert await maintenance.rewrap_all(services.sessions, services.keyring, batch=2) == 0
    after = await _versions(services)
    assert {v.kek_id for v in after} == {new_id}
    for version in after:
        old = before[version.id]
        assert version.wrapped_dek != old.wrapped_dek
        assert (version.storage_key, version.header, version.sha256) == (
            old.storage_key,
            old.header,
            old.sha256,
        )
        assert services.keyring.unwrap(version.kek_id, version.wrapped_dek) == (
            services.keyring.unwrap(old.kek_id, old.wrapped_dek)
        )
    for document_id, content in by_document.items():
        assert await _download(http, world, document_id) == content

    events = await _events(services, "keys.rewrapped")
    assert [json.loads(e.details) for e in events] == [
        {"kek_id": new_id, "versions": 2},
        {"kek_id": new_id, "versions": 2},
        {"kek_id": new_id, "versions": 1},
    ]
    assert all(e.actor_role == "system" for e in events)
    assert await _chain_ok(services)
