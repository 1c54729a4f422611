"""The trash: documents moved there by `documents.trash`, listed and restored by the staff
who look after their clients.

A restored document takes its old name back in its old folder. If a live document has
taken that name meanwhile, the restore is refused with `ConflictError` rather than renamed
behind the user's back: they choose which of the two to rename or trash first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.documents import get_document, live_document, may_manage
from vault.errors import ConflictError, NotFoundError
from vault.folders import folder_paths
from vault.lookalikes import shown_name
from vault.models import Client, Document, Role, User, Version
from vault.policy import Permission, Principal, require

MAX_LISTED = 1000


@dataclass(frozen=True, slots=True)
class TrashedDocument:
    id: uuid.UUID
    name: str
    client_id: uuid.UUID
    client_name: str
    folder_id: uuid.UUID
    folder_path: str
    size: int
    deleted_at: datetime
    deleted_by: str


async def list_trash(
    session: AsyncSession, principal: Principal, context: audit.AuditContext
) -> list[TrashedDocument]:
    """Trashed documents of every client the caller looks after, most recently trashed first
    (the listing is audited: it names documents)."""
    found = await _trashed(session, principal)
    await audit.record(
        session, context, AuditAction.TRASH_LISTED, details={"documents": len(found)}
    )
    return found


async def _trashed(session: AsyncSession, principal: Principal) -> list[TrashedDocument]:
    clients = (await session.execute(select(Client))).scalars().all()
    managed = {c.id: c.name for c in clients if may_manage(principal, c.id)}
    if not managed or principal.role not in (Role.STAFF, Role.ADMIN):
        return []
    deleter = aliased(User)
    rows = await session.execute(
        sa_select(
            col(Document.id),
            col(Document.name),
            col(Document.client_id),
            col(Document.folder_id),
            col(Version.size),
            col(Document.deleted_at),
            col(deleter.display_name),
            col(deleter.email),
            col(deleter.role),
        )
        .join(
            Version,
            (col(Version.document_id) == col(Document.id))
            & (col(Version.number) == col(Document.current_version)),
        )
        .outerjoin(deleter, col(deleter.id) == col(Document.deleted_by))
        .where(
            col(Document.deleted_at).is_not(None),
            col(Document.client_id).in_(list(managed)),
        )
        .order_by(col(Document.deleted_at).desc(), col(Document.name_key))
        .limit(MAX_LISTED)
    )
    paths: dict[uuid.UUID, dict[uuid.UUID, str]] = {}
    found: list[TrashedDocument] = []
    for doc_id, name, client_id, folder_id, size, deleted_at, by, email, role in rows.all():
        assert deleted_at is not None  # the query asked for trashed ones only
        if client_id not in paths:
            paths[client_id] = await folder_paths(session, client_id)
        found.append(
            TrashedDocument(
                doc_id,
                name,
                client_id,
                managed[client_id],
                folder_id,
                paths[client_id].get(folder_id, ""),
                size,
                deleted_at,
                shown_name(by or "", email or "", role) if email else "",
            )
        )
    return found


async def restore(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    document_id: uuid.UUID,
) -> Document:
    """Bring a trashed document back to its folder under its own name.

    Raises:
        NotFoundError: the document is unknown, hidden from the caller, or not in the trash.
        ConflictError: a live document in the folder now has the same name.
    """
    document = await get_document(session, principal, document_id, include_deleted=True)
    # Who does not look after the client learns nothing of its trash (deny = 404).
    if document.deleted_at is None or not may_manage(principal, document.client_id):
        raise NotFoundError("document not found")
    require(principal, Permission.DELETE, document.client_id)
    if await live_document(session, folder_id=document.folder_id, name=document.name):
        raise ConflictError(
            f"a document named {document.name!r} is already in this folder; "
            "rename or trash it first"
        )
    trashed_at = document.deleted_at
    if trashed_at.tzinfo is None:  # SQLite returns the stored UTC time without its zone
        trashed_at = trashed_at.replace(tzinfo=UTC)
    document.deleted_at = None
    document.deleted_by = None
    session.add(document)
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError as exc:
        raise ConflictError(
            f"a document named {document.name!r} was just added to this folder"
        ) from exc
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_RESTORED,
        client_id=document.client_id,
        target_type="document",
        target_id=document.id,
        document_id=document.id,
        details={
            "name": document.name,
            "folder_id": str(document.folder_id),
            "trashed_at": audit.timestamp(trashed_at),
        },
    )
    return document
