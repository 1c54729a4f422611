"""Clients and their folder trees."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import String, type_coerce
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.errors import ConflictError, NotFoundError
from vault.models import ROOT_REF, Client, ClientAccess, Document, Folder, Role
from vault.names import name_key, validate_name
from vault.policy import Permission, Principal, can_see_client, require


async def list_clients(session: AsyncSession, principal: Principal) -> Sequence[Client]:
    query = select(Client).order_by(Client.name_key)
    if principal.role is not Role.ADMIN:
        query = query.where(Client.id.in_(principal.client_ids))  # type: ignore[attr-defined]
    return (await session.execute(query)).scalars().all()


async def create_client(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, name: str
) -> Client:
    require(principal, Permission.CREATE_CLIENT, None)
    name = validate_name(name)
    client = Client(name=name, name_key=name_key(name))
    session.add(client)
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError as exc:
        raise ConflictError(f"a client named {name!r} already exists") from exc
    if principal.role is Role.STAFF:
        # Staff who create a client look after it; otherwise they could not see it.
        session.add(ClientAccess(user_id=principal.user_id, client_id=client.id))
    await audit.record(
        session,
        context,
        "client.created",
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
        "folder.created",
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
