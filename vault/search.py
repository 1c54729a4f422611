"""Finding documents and folders of one client by name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.folders import folder_paths, get_client
from vault.lookalikes import shown_name
from vault.models import Document, Folder, User, Version
from vault.names import name_key
from vault.policy import Permission, Principal, require

MAX_QUERY = 200  # characters; longer than any name a user would type to find one
MAX_RESULTS = 200


@dataclass(frozen=True, slots=True)
class DocumentHit:
    id: uuid.UUID
    name: str
    folder_id: uuid.UUID
    folder_path: str
    size: int
    modified_at: datetime
    modified_by: str


@dataclass(frozen=True, slots=True)
class FolderHit:
    id: uuid.UUID
    name: str
    path: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    documents: list[DocumentHit]
    folders: list[FolderHit]
    truncated: bool


async def search(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    query: str,
) -> SearchResult:
    """Live documents and folders of a client whose names contain `query`.

    The query is folded exactly as stored names are (`names.name_key`: NFC, full case
    folding), so `RÉSUMÉ` finds `résumé`, an NFD query finds an NFC name, and scripts
    without case (Persian, Japanese) match as typed. `%` and `_` are literal characters.
    """
    client = await get_client(session, principal, client_id)
    require(principal, Permission.VIEW, client.id)
    query = query.strip()[:MAX_QUERY]
    key = name_key(query)
    if not key:
        return SearchResult(query, [], [], False)
    rows = await session.execute(
        sa_select(
            col(Document.id),
            col(Document.name),
            col(Document.folder_id),
            col(Version.size),
            col(Version.created_at),
            col(User.display_name),
            col(User.email),
            col(User.role),
        )
        .join(
            Version,
            (col(Version.document_id) == col(Document.id))
            & (col(Version.number) == col(Document.current_version)),
        )
        .outerjoin(User, col(User.id) == col(Version.uploaded_by))
        .where(
            col(Document.client_id) == client.id,
            col(Document.deleted_at).is_(None),
            col(Document.name_key).contains(key, autoescape=True),
        )
        .order_by(col(Document.name_key), col(Document.id))
        .limit(MAX_RESULTS + 1)
    )
    found = rows.all()
    folder_rows = (
        (
            await session.execute(
                select(Folder)
                .where(
                    col(Folder.client_id) == client.id,
                    col(Folder.name_key).contains(key, autoescape=True),
                )
                .order_by(col(Folder.name_key))
                .limit(MAX_RESULTS)
            )
        )
        .scalars()
        .all()
    )
    paths = await folder_paths(session, client.id)
    documents = [
        DocumentHit(
            doc_id,
            name,
            folder_id,
            paths.get(folder_id, ""),
            size,
            at,
            shown_name(by or "", email, role) if email else "",
        )
        for doc_id, name, folder_id, size, at, by, email, role in found[:MAX_RESULTS]
    ]
    folders = [FolderHit(f.id, f.name, paths.get(f.id, f.name)) for f in folder_rows]
    await audit.record(
        session,
        context,
        AuditAction.FOLDER_SEARCHED,
        client_id=client.id,
        target_type="client",
        target_id=client.id,
        details={"query": query, "documents": len(documents), "folders": len(folders)},
    )
    return SearchResult(query, documents, folders, len(found) > MAX_RESULTS)
