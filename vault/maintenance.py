"""Housekeeping: re-wrapping data keys after a KEK rotation, and garbage collection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, holds, quarantine, quarantine_tables, thumbnails, uploads
from vault.accounts import mfa
from vault.audit.actions import AuditAction
from vault.crypto.keyring import Keyring
from vault.db import reading, transaction
from vault.models import Version
from vault.store import ObjectStore

OBJECT_PREFIX = "objects/"


_Keyed = Version | quarantine_tables.HeldVersion | uploads.Upload

# The tables whose rows carry a data key, each with the name its count has in the audit event.
_WRAPPED: tuple[tuple[type[_Keyed], str], ...] = (
    (Version, "versions"),
    (quarantine_tables.HeldVersion, "quarantine"),
    (uploads.Upload, "uploads"),
)


async def _rewrap_rows(
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    model: type[_Keyed],
    name: str,
    batch: int,
) -> int:
    active = keyring.active_id
    total = 0
    while True:
        async with transaction(sessions) as session:
            rows = cast(
                Sequence[_Keyed],
                (
                    await session.execute(
                        select(model)
                        .where(
                            col(model.kek_id) != active,
                            # A destroyed key (shredded, discarded) has nothing left to move.
                            col(model.wrapped_dek).is_not(None),
                        )
                        .limit(batch)
                        .with_for_update()
                        .execution_options(populate_existing=True)
                    )
                )
                .scalars()
                .all(),
            )
            for row in rows:
                wrapped: bytes | None = row.wrapped_dek
                kek_id: str | None = row.kek_id
                if wrapped is not None and kek_id is not None:
                    row.kek_id, row.wrapped_dek = keyring.rewrap(kek_id, wrapped)
                    session.add(row)
            if rows:
                await audit.record(
                    session,
                    audit.SYSTEM,
                    AuditAction.KEYS_REWRAPPED,
                    details={name: len(rows), "kek_id": active},
                )
        total += len(rows)
        if len(rows) < batch:
            return total


async def rewrap_all(
    sessions: async_sessionmaker[AsyncSession], keyring: Keyring, *, batch: int = 500
) -> int:
    """Re-wrap every key not under the active KEK (document versions, quarantined versions,
    resumable uploads, thumbnails and TOTP secrets); object data is never touched.

    Runs in batches, each its own transaction, so it can be interrupted and run again.
    """
    active = keyring.active_id
    total = 0
    for model, name in _WRAPPED:
        total += await _rewrap_rows(sessions, keyring, model, name, batch)
    async with transaction(sessions) as session:
        moved = await thumbnails.rewrap(session, keyring, batch=batch)
        if moved:
            await audit.record(
                session,
                audit.SYSTEM,
                AuditAction.KEYS_REWRAPPED,
                details={"thumbnails": moved, "kek_id": active},
            )
        total += moved
    # TOTP secrets are wrapped under the same keyring.
    async with transaction(sessions) as session:
        total += await mfa.rewrap_totp(session, keyring, batch=batch)
    return total


@dataclass(frozen=True, slots=True)
class CollectedGarbage:
    objects_deleted: int
    uploads_aborted: int
    objects_held: int = 0  # unreferenced, but kept for a client under a legal hold


async def collect_garbage(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    *,
    grace: timedelta,
    now: datetime | None = None,
) -> CollectedGarbage:
    """Delete objects no version refers to and abort stale multipart uploads.

    Only things older than `grace` go, so an upload that is storing its object right now
    (and has not yet committed its version row) is never collected from under it. Resumable
    uploads past their expiry are dropped first; those still live are left alone whatever
    their age (they count among `uploads_aborted` when they expire).
    """
    cutoff = (now or datetime.now(UTC)) - grace
    expired = await uploads.expire_uploads(sessions, store, now=now)
    # Held versions' objects are referenced by no version until they are published.
    resumable = await uploads.live_storage_keys(sessions) | await quarantine.held_storage_keys(
        sessions
    )
    async with reading(sessions) as session:
        held = {str(client_id) for client_id in await holds.held_client_ids(session)}
    deleted = kept = 0
    async for obj in store.list(OBJECT_PREFIX):
        if obj.last_modified > cutoff or obj.key in resumable:
            continue
        if obj.key.removeprefix(OBJECT_PREFIX).split("/")[0] in held:
            # A hold keeps everything of the client, even what no version refers to any
            # more: it may be the evidence of what happened.
            kept += 1
            continue
        async with reading(sessions) as session:
            referenced = (
                await session.execute(select(Version.id).where(Version.storage_key == obj.key))
            ).first()
        if referenced is None:
            await store.delete(obj.key)
            deleted += 1
    # Thumbnails are a cache drawn from versions: one no row refers to any more (replaced,
    # or its row deleted while the store was down) goes whatever the holds.
    async for obj in store.list(thumbnails.PREFIX):
        if obj.last_modified > cutoff:
            continue
        async with reading(sessions) as session:
            in_use = await thumbnails.is_referenced(session, obj.key)
        if not in_use:
            await store.delete(obj.key)
            deleted += 1
    aborted = expired
    for prefix in (OBJECT_PREFIX, thumbnails.PREFIX):
        for upload in await store.list_multipart_uploads(prefix):
            if upload.initiated <= cutoff and upload.key not in resumable:
                await store.abort_multipart(upload.key, upload.upload_id)
                aborted += 1
    if deleted or aborted or kept:
        details = {"objects_deleted": deleted, "uploads_aborted": aborted}
        if kept:
            details["objects_held"] = kept
        async with transaction(sessions) as session:
            await audit.record(
                session, audit.SYSTEM, AuditAction.STORAGE_COLLECTED, details=details
            )
    return CollectedGarbage(deleted, aborted, kept)
