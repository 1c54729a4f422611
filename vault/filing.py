"""Filing: renaming and moving documents and folders within one client, one document or
several at once, and what the folder browser shows to file with (folder choices, item counts).

Ids never change: versions, delivery receipts, links and request attachments keep pointing at
the same document or folder after a rename or a move. A name already taken where the thing
would go is refused (`NameTakenError`), never renamed behind the user's back, and each change
is audited in the caller's transaction, so a batch is all or nothing.

Who may: the firm (staff and admins of the client), asked as `Permission.DELETE` (and
`CREATE_FOLDER` for folders). A rename or move takes a document away from where its readers
look for it, as the trash does; clients may upload but not trash, so they do not file either.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import func, literal, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit, holds
from vault.audit.actions import AuditAction
from vault.documents import get_document, trash
from vault.errors import InvalidInput, NameTakenError, NotFoundError
from vault.folders import ArchiveEntry, ancestors, folder_paths, get_folder, siblings_like
from vault.models import ROOT_REF, Document, Folder, Version
from vault.names import check_distinct, name_key, validate_name
from vault.policy import Permission, Principal, require


class Keep(Enum):
    """Leave a folder where it is (a folder's parent may be None: the client's top level)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def _require_filing(principal: Principal, client_id: uuid.UUID, *, folder: bool) -> None:
    require(principal, Permission.DELETE, client_id)
    if folder:
        require(principal, Permission.CREATE_FOLDER, client_id)


async def _check_place(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    name: str,
    moving: uuid.UUID,
) -> None:
    """Refuse `name` beside what `parent_id` holds, the thing being filed (`moving`) aside:
    the same name is taken (`NameTakenError`), a look-alike is refused as uploads refuse it."""
    siblings = await siblings_like(session, client_id=client_id, parent_id=parent_id, name=name)
    others = [other for other_id, other in siblings if other_id != moving]
    key = name_key(name)
    if any(name_key(other) == key for other in others):
        raise NameTakenError(name)
    check_distinct(name, others)


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError as exc:
        # Another request took the name between the check and the write.
        raise NameTakenError(name) from exc


def _path(paths: dict[uuid.UUID, str], folder_id: uuid.UUID | None) -> str:
    return "" if folder_id is None else paths.get(folder_id, "")


async def change_document(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    document_id: uuid.UUID,
    *,
    name: str | None = None,
    folder_id: uuid.UUID | None = None,
) -> Document:
    """Rename a document (`name`) and/or move it to another folder of its client (`folder_id`).

    Raises:
        NotFoundError: the document, or the folder, is not one the caller may see (another
            client's folder included).
        NameTakenError: the target folder holds something of that name.
        InvalidNameError: the name breaks the naming rules, or looks like a neighbour's.
        HeldError: a legal hold covers the folder the document would leave.
    """
    document = await get_document(session, principal, document_id)
    _require_filing(principal, document.client_id, folder=False)
    new_name = document.name if name is None else validate_name(name)
    target = document.folder_id
    if folder_id is not None and folder_id != document.folder_id:
        folder = await get_folder(session, principal, folder_id)
        if folder.client_id != document.client_id:
            raise NotFoundError("folder not found")
        # Out of a held folder, a document could be trashed after all.
        await holds.refuse_if_held(session, document.client_id, document.folder_id)
        target = folder.id
    moved, renamed = target != document.folder_id, new_name != document.name
    if not moved and not renamed:
        return document
    await _check_place(
        session,
        client_id=document.client_id,
        parent_id=target,
        name=new_name,
        moving=document.id,
    )
    paths = await folder_paths(session, document.client_id) if moved else {}
    old_folder, old_name = document.folder_id, document.name
    document.folder_id, document.name, document.name_key = target, new_name, name_key(new_name)
    session.add(document)
    await _flush(session, new_name)
    if moved:
        await audit.record(
            session,
            context,
            AuditAction.DOCUMENT_MOVED,
            client_id=document.client_id,
            target_type="document",
            target_id=document.id,
            document_id=document.id,
            details={
                "name": new_name,
                "from": str(old_folder),
                "to": str(target),
                "from_path": _path(paths, old_folder),
                "to_path": _path(paths, target),
            },
        )
    if renamed:
        await audit.record(
            session,
            context,
            AuditAction.DOCUMENT_RENAMED,
            client_id=document.client_id,
            target_type="document",
            target_id=document.id,
            document_id=document.id,
            details={"from": old_name, "to": new_name, "folder_id": str(target)},
        )
    return document


async def change_folder(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    folder_id: uuid.UUID,
    *,
    name: str | None = None,
    parent_id: uuid.UUID | Keep | None = KEEP,
) -> Folder:
    """Rename a folder (`name`) and/or move it under another folder of its client, or to the
    client's top level (`parent_id` None); everything inside goes with it.

    Raises:
        NotFoundError: the folder or the new parent is not one the caller may see.
        InvalidInput: rule `into-itself`, the new parent is the folder or lies inside it.
        NameTakenError: the new parent holds something of that name.
        InvalidNameError: the name breaks the naming rules, or looks like a neighbour's.
        HeldError: a legal hold covers the folder being moved.
    """
    folder = await get_folder(session, principal, folder_id)
    _require_filing(principal, folder.client_id, folder=True)
    new_name = folder.name if name is None else validate_name(name)
    target = folder.parent_id
    if parent_id is not KEEP and parent_id != folder.parent_id:
        if parent_id is not None:
            parent = await get_folder(session, principal, parent_id)
            if parent.client_id != folder.client_id:
                raise NotFoundError("folder not found")
            if any(step.id == folder.id for step in await ancestors(session, parent)):
                raise InvalidInput(
                    "a folder cannot move into itself or into a folder inside it",
                    field="parent_id",
                    rule="into-itself",
                )
        await holds.refuse_if_held(session, folder.client_id, folder.id)
        target = parent_id
    moved, renamed = target != folder.parent_id, new_name != folder.name
    if not moved and not renamed:
        return folder
    await _check_place(
        session, client_id=folder.client_id, parent_id=target, name=new_name, moving=folder.id
    )
    paths = await folder_paths(session, folder.client_id) if moved else {}
    old_parent, old_name = folder.parent_id, folder.name
    folder.parent_id, folder.parent_ref = target, str(target) if target else ROOT_REF
    folder.name, folder.name_key = new_name, name_key(new_name)
    session.add(folder)
    await _flush(session, new_name)
    if moved:
        await audit.record(
            session,
            context,
            AuditAction.FOLDER_MOVED,
            client_id=folder.client_id,
            target_type="folder",
            target_id=folder.id,
            details={
                "name": new_name,
                "from": str(old_parent) if old_parent else None,
                "to": str(target) if target else None,
                "from_path": _path(paths, old_parent),
                "to_path": _path(paths, target),
            },
        )
    if renamed:
        await audit.record(
            session,
            context,
            AuditAction.FOLDER_RENAMED,
            client_id=folder.client_id,
            target_type="folder",
            target_id=folder.id,
            details={
                "from": old_name,
                "to": new_name,
                "parent_id": str(target) if target else None,
            },
        )
    return folder


async def move_documents(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    document_ids: Sequence[uuid.UUID],
    *,
    folder_id: uuid.UUID,
) -> list[Document]:
    """Move several documents to one folder; the first refusal (`change_document`'s errors)
    leaves the caller's transaction to be rolled back, so none of them moves."""
    return [
        await change_document(session, principal, context, document_id, folder_id=folder_id)
        for document_id in dict.fromkeys(document_ids)
    ]


async def trash_documents(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    document_ids: Sequence[uuid.UUID],
) -> list[Document]:
    """Move several documents to the trash, all or none (as `move_documents`)."""
    return [
        await trash(session, principal, context, document_id)
        for document_id in dict.fromkeys(document_ids)
    ]


async def selected(
    session: AsyncSession,
    principal: Principal,
    folder_id: uuid.UUID,
    document_ids: Sequence[uuid.UUID],
) -> tuple[Folder, list[ArchiveEntry]]:
    """Live documents of one folder, each with its current version, for an archive of the
    selection (named by the document's name); the caller must be allowed to download.

    Raises:
        NotFoundError: one of them is not a live document of that folder.
    """
    folder = await get_folder(session, principal, folder_id)
    require(principal, Permission.DOWNLOAD, folder.client_id)
    wanted = list(dict.fromkeys(document_ids))
    rows = (
        await session.execute(
            select(Document, Version)
            .join(
                Version,
                (col(Version.document_id) == col(Document.id))
                & (col(Version.number) == col(Document.current_version)),
            )
            .where(
                col(Document.id).in_(wanted),
                Document.folder_id == folder.id,
                col(Document.deleted_at).is_(None),
            )
            .order_by(col(Document.name_key))
        )
    ).all()
    if len(rows) != len(wanted):
        raise NotFoundError("document not found")
    return folder, [ArchiveEntry(doc.name, folder, doc, version) for doc, version in rows]


class FolderSummary(NamedTuple):
    """What a folder row says of its contents: how many things are directly inside (folders
    and live documents) and when the newest of them last changed (None when empty)."""

    items: int
    changed_at: datetime | None


async def folder_summaries(
    session: AsyncSession, folder_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, FolderSummary]:
    """`FolderSummary` of each folder, in one query whatever the number of folders."""
    if not folder_ids:
        return {}
    ids = list(folder_ids)
    documents: Any = (
        sa_select(
            col(Document.folder_id).label("parent"),
            func.count().label("items"),
            func.max(col(Document.updated_at)).label("changed"),
            literal(0).label("kind"),
        )
        .where(col(Document.folder_id).in_(ids), col(Document.deleted_at).is_(None))
        .group_by(col(Document.folder_id))
    )
    subfolders: Any = (
        sa_select(
            col(Folder.parent_id).label("parent"),
            func.count().label("items"),
            func.max(col(Folder.created_at)).label("changed"),
            literal(1).label("kind"),
        )
        .where(col(Folder.parent_id).in_(ids))
        .group_by(col(Folder.parent_id))
    )
    found: dict[uuid.UUID, FolderSummary] = {fid: FolderSummary(0, None) for fid in ids}
    for parent, items, changed, _ in (
        await session.execute(union_all(documents, subfolders))
    ).all():
        key = parent if isinstance(parent, uuid.UUID) else uuid.UUID(str(parent))
        before = found[key]
        times = [t for t in (before.changed_at, changed) if t is not None]
        found[key] = FolderSummary(before.items + items, max(times, default=None))
    return found


class FolderChoice(NamedTuple):
    """A folder offered as a place to move to: its depth under the client's top level and
    its path (`Tax 2026 › Receipts`)."""

    id: uuid.UUID
    name: str
    depth: int
    path: str


async def folder_choices(
    session: AsyncSession, client_id: uuid.UUID, *, leaving_out: uuid.UUID | None = None
) -> list[FolderChoice]:
    """Every folder of a client in tree order (each folder before its sub-folders, by name),
    without `leaving_out` and what lies inside it (where a folder cannot move)."""
    rows = (
        await session.execute(
            sa_select(
                col(Folder.id), col(Folder.parent_id), col(Folder.name), col(Folder.name_key)
            ).where(col(Folder.client_id) == client_id)
        )
    ).all()
    by_parent: dict[uuid.UUID | None, list[tuple[uuid.UUID, str, str]]] = {}
    for fid, parent, name, key in rows:
        by_parent.setdefault(parent, []).append((fid, name, key))
    choices: list[FolderChoice] = []
    # Depth first, each folder's children pushed last name first so the first pops first.
    pending: list[tuple[uuid.UUID, str, int, str]] = []

    def push(parent: uuid.UUID | None, depth: int, path: str) -> None:
        for fid, name, _ in sorted(by_parent.get(parent, []), key=lambda c: c[2], reverse=True):
            if fid != leaving_out:
                pending.append((fid, name, depth, f"{path} › {name}" if path else name))

    push(None, 0, "")
    seen: set[uuid.UUID] = set()
    while pending:
        fid, name, depth, path = pending.pop()
        # A cycle cannot be stored through this module; the guard keeps a corrupt tree finite.
        if fid in seen:
            continue
        seen.add(fid)
        choices.append(FolderChoice(fid, name, depth, path))
        push(fid, depth + 1, path)
    return choices
