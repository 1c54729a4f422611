"""The firm's clients as the console manages them: rename, archive and restore, and the
overview of one client (its people, open requests).

Archiving keeps everything and changes nothing: an archived client is left out of lists and
becomes read-only for everyone (`Principal.archived_client_ids`, checked by the one policy),
until an admin restores it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, NotFoundError
from vault.models import Client, ClientAccess, Role, User
from vault.names import name_key, validate_name
from vault.policy import Permission, Principal, allows
from vault.request_tables import DocumentRequest


@dataclass(frozen=True, slots=True)
class ClientOverview:
    client: Client
    members: list[User]  # the client's own users
    staff: list[User]  # the firm's staff assigned to it
    open_requests: int
    overdue_requests: int


def require_admin(principal: Principal) -> None:
    # Managing clients is for admins; to anyone else the console's client pages do not exist.
    if not allows(principal, Permission.MANAGE, None):
        raise NotFoundError("client not found")


async def _client(session: AsyncSession, principal: Principal, client_id: uuid.UUID) -> Client:
    require_admin(principal)
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFoundError("client not found")
    return client


async def all_clients(
    session: AsyncSession,
    principal: Principal,
    *,
    archived: bool = False,
    context: audit.AuditContext | None = None,
) -> list[Client]:
    """Every client (admins), by name: the live ones, or only the archived ones; shown to
    someone (audited) when `context` is given."""
    require_admin(principal)
    archived_at = col(Client.archived_at)
    query = select(Client).where(archived_at.is_not(None) if archived else archived_at.is_(None))
    found = list((await session.execute(query.order_by(col(Client.name_key)))).scalars().all())
    if context is not None:
        await audit.record(
            session,
            context,
            AuditAction.CLIENT_LISTED,
            details={"clients": len(found), "archived": archived},
        )
    return found


async def rename(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    name: str,
) -> Client:
    """Give a client a new name, unique among all clients.

    Raises:
        InvalidNameError: the name breaks the naming rules.
        ConflictError: another client has that name.
    """
    client = await _client(session, principal, client_id)
    name = validate_name(name)
    key = name_key(name)
    if key == client.name_key and name == client.name:
        return client
    taken = (
        await session.execute(
            select(Client.id).where(Client.name_key == key, Client.id != client.id)
        )
    ).first()
    if taken is not None:
        raise ConflictError(f"a client named {name!r} already exists")
    before = client.name
    client.name, client.name_key = name, key
    session.add(client)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.CLIENT_RENAMED,
        client_id=client.id,
        target_type="client",
        target_id=client.id,
        details={"from": before, "to": name},
    )
    return client


async def set_archived(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    *,
    archived: bool,
) -> Client:
    """Archive a client (read-only, out of every list) or restore it."""
    client = await _client(session, principal, client_id)
    if (client.archived_at is not None) == archived:
        return client
    client.archived_at = datetime.now(UTC) if archived else None
    session.add(client)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.CLIENT_ARCHIVED if archived else AuditAction.CLIENT_RESTORED,
        client_id=client.id,
        target_type="client",
        target_id=client.id,
        details={"name": client.name},
    )
    return client


async def overview(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    *,
    today: date | None = None,
    context: audit.AuditContext | None = None,
) -> ClientOverview:
    """One client with its users, its assigned staff and how many requests are open; shown
    to someone (audited) when `context` is given."""
    client = await _client(session, principal, client_id)
    if context is not None:
        await audit.record(
            session,
            context,
            AuditAction.CLIENT_VIEWED,
            client_id=client.id,
            target_type="client",
            target_id=client.id,
        )
    people = (
        (
            await session.execute(
                select(User)
                .join(ClientAccess, col(ClientAccess.user_id) == col(User.id))
                .where(col(ClientAccess.client_id) == client.id)
                .order_by(col(User.email))
            )
        )
        .scalars()
        .all()
    )
    open_query = select(func.count()).where(
        col(DocumentRequest.client_id) == client.id, col(DocumentRequest.closed_at).is_(None)
    )
    opened = int((await session.execute(open_query)).scalar_one())
    overdue_query = open_query.where(col(DocumentRequest.due_date) < (today or date.today()))
    overdue = int((await session.execute(overdue_query)).scalar_one())
    return ClientOverview(
        client=client,
        members=[u for u in people if u.role == Role.CLIENT],
        staff=[u for u in people if u.role == Role.STAFF],
        open_requests=opened,
        overdue_requests=overdue,
    )
