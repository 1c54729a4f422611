"""Clients and their folder trees."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import String, type_coerce, union
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, InvalidNameError, NotFoundError
from vault.lookalikes import lookalike_keys, shown_name
from vault.models import ROOT_REF, Client, ClientAccess, Document, Folder, Role, User, Version
from vault.names import check_distinct, copy_name, first_free, name_key, validate_name
from vault.policy import Permission, Principal, can_see_client, require, visible_client_ids

# Separates a name key from the id of a client that shares its name with a client its
# creator could not see; validate_name refuses "/" in every name.
_HIDDEN_NAMESAKE = "/"


async def list_clients(
    session: AsyncSession,
    principal: Principal,
    *,
    context: audit.AuditContext | None = None,
    archived: bool = False,
) -> Sequence[Client]:
    """The clients the principal can see, by name (archived ones only when asked for); shown
    to someone (audited) when `context` is given."""
    query = select(Client).order_by(Client.name_key)
    if not archived:
        query = query.where(col(Client.archived_at).is_(None))
    visible = visible_client_ids(principal)
    if visible is not None:
        query = query.where(Client.id.in_(visible))  # type: ignore[attr-defined]
    clients = (await session.execute(query)).scalars().all()
    if context is not None:
        await audit.record(
            session, context, AuditAction.CLIENT_LISTED, details={"clients": len(clients)}
        )
    return clients


async def create_client(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, name: str
) -> Client:
    require(principal, Permission.CREATE_CLIENT, None)
    name = validate_name(name, for_file=False)
    key = name_key(name)
    # Client names are unique among the clients the creator can see, not firm-wide: a 409 for
    # a name only another client's staff can see told staff which clients the firm has
    # (review item 7). A second "Acme" created that way is stored under a key no name can
    # have (names never contain "/"), so the unique index still holds for the first.
    namesakes = (
        (
            await session.execute(
                select(Client).where(
                    (col(Client.name_key) == key)
                    | col(Client.name_key).startswith(key + _HIDDEN_NAMESAKE, autoescape=True)
                )
            )
        )
        .scalars()
        .all()
    )
    if any(can_see_client(principal, c.id) for c in namesakes):
        raise ConflictError(f"a client named {name!r} already exists")
    client = Client(name=name, name_key=key)
    if namesakes:
        client.name_key = f"{key}{_HIDDEN_NAMESAKE}{client.id}"
    session.add(client)
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError as exc:
        # A concurrent creation of the same name won the race.
        raise ConflictError(f"a client named {name!r} already exists") from exc
    if principal.role is Role.STAFF:
        # Staff who create a client look after it; otherwise they could not see it.
        session.add(ClientAccess(user_id=principal.user_id, client_id=client.id))
    await audit.record(
        session,
        context,
        AuditAction.CLIENT_CREATED,
        client_id=client.id,
        target_type="client",
        target_id=client.id,
        details={"name": name},
    )
    return client


async def find_client_by_name(session: AsyncSession, name: str) -> Client | None:
    key = name_key(validate_name(name))
    return (
        await session.execute(select(Client).where(Client.name_key == key))
    ).scalar_one_or_none()


async def get_client(session: AsyncSession, principal: Principal, client_id: uuid.UUID) -> Client:
    client = await session.get(Client, client_id)
    if client is None or not can_see_client(principal, client.id):
        raise NotFoundError("client not found")
    return client


async def get_folder(session: AsyncSession, principal: Principal, folder_id: uuid.UUID) -> Folder:
    """The folder, if the caller may see it; otherwise `NotFoundError`."""
    folder = await session.get(Folder, folder_id)
    # One message for "missing" and "another client's": the answer must not tell them apart.
    if folder is None or not can_see_client(principal, folder.client_id):
        raise NotFoundError("folder not found")
    require(principal, Permission.VIEW, folder.client_id)
    return folder


async def siblings_like(
    session: AsyncSession, *, client_id: uuid.UUID, parent_id: uuid.UUID | None, name: str
) -> list[tuple[uuid.UUID, str]]:
    """The ids and names of what `name` would clash with beside `parent_id`'s subfolders and
    live documents (the client's root folders when None): the same name in any case, and
    every name sharing a look-alike key with it (`vault.lookalikes.lookalike_keys`), for
    `names.check_distinct` to decide on. Found by index, however full the folder is."""
    return await _near(session, client_id, parent_id, [name])


# A drop's name and its numbered copies are looked for this many at a time.
_COPIES_PER_QUERY = 16


async def free_sibling_name(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    parent_id: uuid.UUID,
    name: str,
    reserved: Collection[str] = (),
) -> str:
    """`names.free_name` of `name` beside `parent_id`'s subfolders and live documents and the
    `reserved` names, reading by index only the names its candidates could clash with."""
    for first in range(1, 100_000, _COPIES_PER_QUERY):
        numbers = range(first, first + _COPIES_PER_QUERY)
        near = await _near(session, client_id, parent_id, [copy_name(name, n) for n in numbers])
        found = first_free(name, numbers, [*(other for _, other in near), *reserved])
        if found is not None:
            return found
    raise InvalidNameError("confusable", "no free name was found for this file")


async def _near(
    session: AsyncSession, client_id: uuid.UUID, parent_id: uuid.UUID | None, names: list[str]
) -> list[tuple[uuid.UUID, str]]:
    """`siblings_like` of any of `names`."""
    # One SELECT per key column, each a lookup in its own index: SQLite plans an OR of the
    # three as a walk through every row of the folder.
    same = sorted({name_key(name) for name in names})
    alike = sorted({key for name in names for key in lookalike_keys(name)})
    parent_ref = str(parent_id) if parent_id else ROOT_REF
    near = [
        sa_select(col(Folder.id), col(Folder.name)).where(
            col(Folder.client_id) == client_id, col(Folder.parent_ref) == parent_ref, match
        )
        for match in (
            col(Folder.name_key).in_(same),
            col(Folder.lookalike_key).in_(alike),
            col(Folder.lookalike_folded_key).in_(alike),
        )
    ]
    if parent_id is not None:
        near += [
            sa_select(col(Document.id), col(Document.name)).where(
                col(Document.folder_id) == parent_id, col(Document.deleted_at).is_(None), match
            )
            for match in (
                col(Document.name_key).in_(same),
                col(Document.lookalike_key).in_(alike),
                col(Document.lookalike_folded_key).in_(alike),
            )
        ]
    return [(row_id, row_name) for row_id, row_name in await session.execute(union(*near))]


async def create_folder(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    name: str,
) -> Folder:
    if parent_id is not None:
        parent = await get_folder(session, principal, parent_id)
        if parent.client_id != client_id:
            raise NotFoundError("parent folder not found")
    else:
        await get_client(session, principal, client_id)
    require(principal, Permission.CREATE_FOLDER, client_id)
    name = validate_name(name)
    near = await siblings_like(session, client_id=client_id, parent_id=parent_id, name=name)
    check_distinct(name, [other for _, other in near])
    folder = Folder(
        client_id=client_id,
        parent_id=parent_id,
        parent_ref=str(parent_id) if parent_id else ROOT_REF,
        name=name,
        name_key=name_key(name),
        created_by=principal.user_ref,
    )
    session.add(folder)
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError as exc:
        raise ConflictError(f"a folder named {name!r} already exists here") from exc
    await audit.record(
        session,
        context,
        AuditAction.FOLDER_CREATED,
        client_id=client_id,
        target_type="folder",
        target_id=folder.id,
        details={"name": name, "parent_id": str(parent_id) if parent_id else None},
    )
    return folder


class DocumentSummary(NamedTuple):
    """A document as a folder listing shows it."""

    id: str
    name: str
    current_version: int
    updated_at: datetime


async def children(
    session: AsyncSession, *, client_id: uuid.UUID, folder_id: uuid.UUID | None
) -> tuple[Sequence[Folder], Sequence[DocumentSummary]]:
    """Sub-folders and live documents directly inside a folder (or the client's root)."""
    ref = str(folder_id) if folder_id else ROOT_REF
    folders = (
        (
            await session.execute(
                select(Folder)
                .where(Folder.client_id == client_id, Folder.parent_ref == ref)
                .order_by(Folder.name_key)
            )
        )
        .scalars()
        .all()
    )
    if folder_id is None:
        return folders, []
    # Plain rows of the four listed columns: building ORM objects for a 10,000-document
    # folder costs several times more than the query itself.
    rows = await session.execute(
        select(
            type_coerce(col(Document.id), String),
            col(Document.name),
            col(Document.current_version),
            col(Document.updated_at),
        )
        .where(Document.folder_id == folder_id, col(Document.deleted_at).is_(None))
        .order_by(col(Document.name_key))
    )
    documents = [DocumentSummary(_uuid_text(row[0]), *row[1:]) for row in rows.all()]
    return folders, documents


def _uuid_text(value: object) -> str:
    # The id as stored: 32 hex digits on SQLite, a native uuid on PostgreSQL. Formatting
    # the text directly skips a uuid.UUID per row, which dominates large listings.
    text = str(value)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


async def ancestors(session: AsyncSession, folder: Folder) -> list[Folder]:
    """The folder's chain from its client's root down to the folder itself."""
    chain = [folder]
    seen = {folder.id}
    while chain[0].parent_id is not None:
        parent = await session.get(Folder, chain[0].parent_id)
        # A cycle cannot be stored through this module; the guard keeps a corrupt row finite.
        if parent is None or parent.id in seen or parent.client_id != folder.client_id:
            break
        seen.add(parent.id)
        chain.insert(0, parent)
    return chain


class ListedDocument(NamedTuple):
    """A document as the folder browser lists it: its current version's size, time and
    uploader."""

    id: uuid.UUID
    name: str
    name_key: str
    size: int
    modified_at: datetime
    modified_by: str
    content_type: str


SORT_KEYS = ("name", "size", "modified", "by")


async def listed_documents(session: AsyncSession, folder_id: uuid.UUID) -> list[ListedDocument]:
    """Live documents in a folder with what the browser shows of each, in name order."""
    rows = await session.execute(
        sa_select(
            col(Document.id),
            col(Document.name),
            col(Document.name_key),
            col(Version.size),
            col(Version.created_at),
            col(User.display_name),
            col(User.email),
            col(User.role),
            col(Version.content_type),
        )
        .join(
            Version,
            (col(Version.document_id) == col(Document.id))
            & (col(Version.number) == col(Document.current_version)),
        )
        .outerjoin(User, col(User.id) == col(Version.uploaded_by))
        .where(col(Document.folder_id) == folder_id, col(Document.deleted_at).is_(None))
        .order_by(col(Document.name_key))
    )
    return [
        # The "By" column: a client cannot pass for the firm by their display name (item 11).
        ListedDocument(
            doc_id, name, key, size, modified, shown_name(display, email, role), content_type
        )
        for doc_id, name, key, size, modified, display, email, role, content_type in rows.all()
    ]


def sort_documents(
    documents: Sequence[ListedDocument], *, sort: str, descending: bool
) -> list[ListedDocument]:
    """Order a listing by one column; ties fall back to the name key, always ascending.

    Names compare by their case-folded NFC key, so `apple`, `Banana` and `café` sort as a
    reader expects and any script sorts by code point within itself.
    """
    by_name = sorted(documents, key=lambda d: d.name_key)
    if sort == "size":
        ordered = sorted(by_name, key=lambda d: d.size, reverse=descending)
    elif sort == "modified":
        ordered = sorted(by_name, key=lambda d: _aware(d.modified_at), reverse=descending)
    elif sort == "by":
        ordered = sorted(by_name, key=lambda d: name_key(d.modified_by), reverse=descending)
    else:
        ordered = list(reversed(by_name)) if descending else by_name
    return ordered


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ArchiveEntry(NamedTuple):
    """One member of a folder archive: a folder (document is None) or a document's
    current version, with its path inside the archive."""

    path: str
    folder: Folder
    document: Document | None
    version: Version | None


async def subtree(
    session: AsyncSession, principal: Principal, folder_id: uuid.UUID
) -> list[ArchiveEntry]:
    """Every folder under `folder_id` (itself included) and each live document's current
    version, as archive paths `folder/sub/name`; the caller must be allowed to download."""
    root = await get_folder(session, principal, folder_id)
    require(principal, Permission.DOWNLOAD, root.client_id)
    return await tree(session, root)


async def tree(session: AsyncSession, root: Folder) -> list[ArchiveEntry]:
    """`subtree` of a folder already checked by the caller (e.g. the folder of a share link)."""
    folders = (
        (await session.execute(select(Folder).where(Folder.client_id == root.client_id)))
        .scalars()
        .all()
    )
    by_parent: dict[uuid.UUID | None, list[Folder]] = {}
    for folder in folders:
        by_parent.setdefault(folder.parent_id, []).append(folder)
    paths: dict[uuid.UUID, str] = {}
    order: list[Folder] = []
    pending = [(root, root.name)]
    while pending:
        folder, path = pending.pop()
        if folder.id in paths:
            continue
        paths[folder.id] = path
        order.append(folder)
        for child in sorted(by_parent.get(folder.id, []), key=lambda f: f.name_key, reverse=True):
            pending.append((child, f"{path}/{child.name}"))
    rows = await session.execute(
        select(Document, Version)
        .join(
            Version,
            (col(Version.document_id) == col(Document.id))
            & (col(Version.number) == col(Document.current_version)),
        )
        .where(col(Document.folder_id).in_(list(paths)), col(Document.deleted_at).is_(None))
        .order_by(col(Document.name_key))
    )
    documents: dict[uuid.UUID, list[tuple[Document, Version]]] = {}
    for document, version in rows.all():
        documents.setdefault(document.folder_id, []).append((document, version))
    entries: list[ArchiveEntry] = []
    for folder in order:
        entries.append(ArchiveEntry(paths[folder.id] + "/", folder, None, None))
        for document, version in documents.get(folder.id, []):
            entries.append(
                ArchiveEntry(f"{paths[folder.id]}/{document.name}", folder, document, version)
            )
    return entries


async def folder_paths(session: AsyncSession, client_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every folder of a client by id, as a readable path `Tax 2026 › Receipts`."""
    rows = (
        await session.execute(
            select(col(Folder.id), col(Folder.parent_id), col(Folder.name)).where(
                Folder.client_id == client_id
            )
        )
    ).all()
    parent = {fid: pid for fid, pid, _ in rows}
    names = {fid: name for fid, _, name in rows}
    paths: dict[uuid.UUID, str] = {}

    def path_of(fid: uuid.UUID) -> str:
        parts: list[str] = []
        current: uuid.UUID | None = fid
        seen: set[uuid.UUID] = set()
        while current is not None and current in names and current not in seen:
            if current in paths:
                parts.append(paths[current])
                break
            seen.add(current)
            parts.append(names[current])
            current = parent[current]
        return " › ".join(reversed(parts))

    for fid in names:
        paths[fid] = path_of(fid)
    return paths


async def record_listed(
    session: AsyncSession,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    folder_id: uuid.UUID | None = None,
) -> None:
    """Audit that a folder's contents (the client's top level when `folder_id` is None) were
    shown to someone."""
    await audit.record(
        session,
        context,
        AuditAction.FOLDER_LISTED,
        client_id=client_id,
        target_type="client" if folder_id is None else "folder",
        target_id=client_id if folder_id is None else folder_id,
    )


async def record_downloaded(
    session: AsyncSession, context: audit.AuditContext, root: Folder, *, documents: int, size: int
) -> None:
    """Audit that a folder went out as one archive of `documents` files, `size` bytes."""
    await audit.record(
        session,
        context,
        AuditAction.FOLDER_DOWNLOADED,
        client_id=root.client_id,
        target_type="folder",
        target_id=root.id,
        details={"name": root.name, "documents": documents, "bytes": size},
    )
