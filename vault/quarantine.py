"""Malware quarantine: new versions held back until a scanner has passed them.

A held version is stored and encrypted like any other, but it is no `Version` row yet: no
listing, download, search or email can reach it, since all of those read versions and the
notifier reads `document.*` events. It becomes the document's next version (with the usual
`document.created` / `document.version_added` event, hence the usual email) when its scan
comes back clean, or when staff release it. An infected one is never published: it stays
encrypted for review, or is deleted, by policy.

The row keeps its wrapped data key only while it is held: once published, the version's row
has the key; once deleted, no key may survive (crypto-shredding), so the row's copy is erased
in the same transaction, with that of the finished resumable upload it came from.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, holds, request_uploads
from vault import documents as doc_service
from vault.audit.actions import AuditAction
from vault.crypto.blobs import StoredBlob
from vault.db import reading
from vault.errors import ConflictError, NotFoundError
from vault.folders import get_folder
from vault.models import Document, Version
from vault.names import guess_content_type
from vault.policy import Permission, Principal, require
from vault.quarantine_tables import HeldVersion, ScanState
from vault.uploads.resumable import StagedRun, Upload, UploadPart, UploadState


@dataclass(frozen=True, slots=True)
class _Planned:
    """A held row as `documents.record_version` takes it, its key still in place."""

    client_id: uuid.UUID
    folder_id: uuid.UUID
    document_id: uuid.UUID
    version_id: uuid.UUID
    name: str
    is_new: bool
    kek_id: str
    wrapped_dek: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """What an upload became: a version, or (when `held`) a version in quarantine."""

    document_id: uuid.UUID
    version: int | None
    held: bool
    name: str


def _event_details(row: HeldVersion, **extra: object) -> dict[str, object]:
    return {
        "name": row.name,
        "folder_id": str(row.folder_id),
        "version_id": str(row.version_id),
        "size": row.size,
        "state": row.state,
        **extra,
    }


async def commit_or_hold(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    plan: doc_service.UploadPlan,
    blob: StoredBlob,
    *,
    hold: bool,
    content_type: str | None = None,
    details: dict[str, object] | None = None,
) -> Committed:
    """Record an upload: as the next version, or in quarantine when `hold`."""
    if not hold:
        document, version = await doc_service.commit_upload(
            session, principal, context, plan, blob, content_type=content_type, details=details
        )
        return Committed(document.id, version.number, held=False, name=document.name)
    folder = await get_folder(session, principal, plan.folder_id)
    require(principal, Permission.UPLOAD, folder.client_id)
    row = HeldVersion(
        version_id=plan.version_id,
        client_id=plan.client_id,
        folder_id=plan.folder_id,
        document_id=plan.document_id,
        name=plan.name,
        is_new=plan.is_new,
        state=ScanState.PENDING,
        size=blob.plaintext_size,
        sha256=blob.sha256,
        content_type=content_type or guess_content_type(plan.name),
        uploaded_by=principal.user_ref,
        storage_key=blob.key,
        object_size=blob.object_size,
        kek_id=plan.kek_id,
        wrapped_dek=plan.wrapped_dek,
        header=blob.header,
        details=json.dumps(details or {}, sort_keys=True),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.QUARANTINE_HELD,
        client_id=row.client_id,
        target_type="version",
        target_id=row.version_id,
        document_id=row.document_id,
        details=_event_details(row, sha256=row.sha256, **(details or {})),
    )
    return Committed(plan.document_id, None, held=True, name=plan.name)


async def publish(session: AsyncSession, context: audit.AuditContext, row: HeldVersion) -> Version:
    """Make a held version its document's next version (the caller has decided it may be).

    Raises:
        ConflictError: its document was deleted, or another took its name; the caller's
            transaction must be rolled back.
    """
    if row.kek_id is None or row.wrapped_dek is None or row.header is None:
        raise ConflictError("this version's key is gone; it can no longer be published")
    blob = StoredBlob(
        key=row.storage_key,
        object_size=row.object_size,
        plaintext_size=row.size,
        sha256=row.sha256,
        header=row.header,
    )
    planned = _Planned(
        row.client_id,
        row.folder_id,
        row.document_id,
        row.version_id,
        row.name,
        row.is_new,
        row.kek_id,
        row.wrapped_dek,
    )
    extra: dict[str, object] = json.loads(row.details)
    extra["scan"] = row.state
    _, version = await doc_service.record_version(
        session,
        context,
        planned,
        blob,
        content_type=row.content_type,
        uploaded_by=row.uploaded_by,
        details=extra,
    )
    row.published_version = version.number
    # The version's row holds the key from now on: one copy, which shredding destroys.
    forget_key(row)
    session.add(row)
    # An upload answering a request item is submitted now that it is a version.
    await request_uploads.submit_released(
        session,
        context,
        details=row.details,
        uploaded_by=row.uploaded_by,
        document_id=row.document_id,
        version=version.number,
    )
    return version


async def locked(session: AsyncSession, version_id: uuid.UUID) -> HeldVersion | None:
    return (
        await session.execute(
            select(HeldVersion).where(HeldVersion.version_id == version_id).with_for_update()
        )
    ).scalar_one_or_none()


async def _managed(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> HeldVersion:
    row = await locked(session, version_id)
    # Clients never see what is held, not even their own upload: it answers as missing.
    if row is None or row.deleted_at is not None or not _may_manage(principal, row.client_id):
        raise NotFoundError("version not found")
    require(principal, Permission.DELETE, row.client_id)
    return row


async def release(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    version_id: uuid.UUID,
) -> Version:
    """Publish a held version on staff's word (pending, or not scanned).

    Raises:
        ConflictError: it is infected (never served), already published, or cannot join
            its document any more.
    """
    row = await _managed(session, principal, version_id)
    if row.state == ScanState.INFECTED:
        raise ConflictError("an infected file is never released; delete it")
    if row.published_version is not None:
        raise ConflictError("this version is already published")
    row.decided_by = principal.user_ref
    row.decided_at = datetime.now(UTC)
    await audit.record(
        session,
        context,
        AuditAction.QUARANTINE_RELEASED,
        client_id=row.client_id,
        target_type="version",
        target_id=row.version_id,
        document_id=row.document_id,
        details=_event_details(row),
    )
    return await publish(session, context, row)


async def discard(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    version_id: uuid.UUID,
) -> str:
    """Delete a held version (any state but published); returns the object key, which the
    caller deletes from the store once this transaction has committed.

    Raises:
        NotFoundError: no such held version for this caller.
        HeldError: a legal hold covers its folder; the row and the object stay.
        ConflictError: it was published.
    """
    row = await _managed(session, principal, version_id)
    if row.published_version is not None:
        raise ConflictError("this version is published; move the document to the trash")
    await holds.refuse_if_held(session, row.client_id, row.folder_id)
    await mark_deleted(session, row, by=principal.user_ref)
    await audit.record(
        session,
        context,
        AuditAction.QUARANTINE_DELETED,
        client_id=row.client_id,
        target_type="version",
        target_id=row.version_id,
        document_id=row.document_id,
        details=_event_details(row, signature=row.signature),
    )
    return row.storage_key


async def mark_deleted(session: AsyncSession, row: HeldVersion, *, by: uuid.UUID | None) -> None:
    """Record the held version as deleted and destroy every copy of its data key, so that
    its object is unreadable from the moment this transaction commits."""
    now = datetime.now(UTC)
    row.deleted_at = now
    row.decided_by = by
    row.decided_at = now
    forget_key(row)
    session.add(row)
    await forget_upload_keys(session, [row.version_id])


def forget_key(row: HeldVersion) -> None:
    row.kek_id = None
    row.wrapped_dek = None
    row.header = None


async def forget_upload_keys(session: AsyncSession, version_ids: Sequence[uuid.UUID]) -> None:
    """Delete the finished resumable uploads of these versions: each row keeps a copy of
    its version's wrapped data key (to answer HEAD until it expires)."""
    finished = select(Upload.id).where(
        col(Upload.version_id).in_(version_ids), Upload.state == UploadState.COMPLETE
    )
    ids = list((await session.execute(finished)).scalars().all())
    if not ids:
        return
    await session.execute(delete(UploadPart).where(col(UploadPart.upload_id).in_(ids)))
    await session.execute(delete(StagedRun).where(col(StagedRun.upload_id).in_(ids)))
    await session.execute(delete(Upload).where(col(Upload.id).in_(ids)))


async def forget_shredded(session: AsyncSession, version_ids: Sequence[uuid.UUID]) -> None:
    """Versions being shredded: delete their quarantine rows (a key copy in rows published
    before keys were erased on publishing) and their finished uploads' rows."""
    await session.execute(delete(HeldVersion).where(col(HeldVersion.version_id).in_(version_ids)))
    await forget_upload_keys(session, version_ids)


async def held_in_folder(
    session: AsyncSession, principal: Principal, folder_id: uuid.UUID
) -> Sequence[HeldVersion]:
    """What waits in quarantine in this folder, oldest first; empty unless the caller
    looks after the client (staff, admins)."""
    folder = await get_folder(session, principal, folder_id)
    if not _may_manage(principal, folder.client_id):
        return []
    return await _held(session, col(HeldVersion.folder_id) == folder.id)


async def held_for_document(
    session: AsyncSession, principal: Principal, document: Document
) -> Sequence[HeldVersion]:
    if not _may_manage(principal, document.client_id):
        return []
    return await _held(session, col(HeldVersion.document_id) == document.id)


async def _held(session: AsyncSession, where: object) -> Sequence[HeldVersion]:
    return (
        (
            await session.execute(
                select(HeldVersion)
                .where(
                    where,  # type: ignore[arg-type]
                    col(HeldVersion.published_version).is_(None),
                    col(HeldVersion.deleted_at).is_(None),
                )
                .order_by(col(HeldVersion.created_at))
            )
        )
        .scalars()
        .all()
    )


async def scan_states(session: AsyncSession, document_id: uuid.UUID) -> dict[int, str]:
    """The scan state of each of the document's published versions that was held."""
    rows = await session.execute(
        select(HeldVersion.published_version, HeldVersion.state).where(
            HeldVersion.document_id == document_id,
            col(HeldVersion.published_version).is_not(None),
        )
    )
    return {number: state for number, state in rows if number is not None}


def _may_manage(principal: Principal, client_id: uuid.UUID) -> bool:
    return doc_service.may_manage(principal, client_id)


async def held_storage_keys(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Objects of versions still held: referenced by no version yet, but not garbage."""
    async with reading(sessions) as session:
        rows = await session.execute(
            select(HeldVersion.storage_key).where(
                col(HeldVersion.published_version).is_(None),
                col(HeldVersion.deleted_at).is_(None),
            )
        )
        return set(rows.scalars())
