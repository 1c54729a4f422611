"""The firm's people, as the console manages them: who they are, what they may reach, and
the actions on an account (role, clients, disable, second-factor reset, invitation resent).

Admins manage everyone. Staff manage only the client users whose every client is one of
their own (disable and enable, reset a second factor, add to or remove from their own
clients, resend an invitation), so acting on an account never reaches into a client the
staff member cannot see; anyone else is simply not there for them (404). Each action ends
what it must at once (sessions and personal access tokens) and is audited in the same
transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.accounts import email_links, mfa, sessions
from vault.accounts.identity import EmailLinkPurpose, TotpCredential
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, NotFoundError
from vault.models import AuditEvent, Client, ClientAccess, Role, User
from vault.policy import Permission, Principal, allows

MAX_LISTED = 200


class Status(StrEnum):
    ACTIVE = "active"
    INVITED = "invited"  # never chose a password
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Person:
    user: User
    clients: list[Client]
    last_sign_in: datetime | None
    has_totp: bool
    status: Status


def manages_everyone(principal: Principal) -> bool:
    return allows(principal, Permission.MANAGE, None)


def may_open(principal: Principal) -> bool:
    """Whether the People pages exist for the caller at all (admins, and staff)."""
    return not principal.read_only and principal.role in (Role.ADMIN, Role.STAFF)


def status_of(user: User) -> Status:
    if not user.is_active:
        return Status.DISABLED
    return Status.INVITED if user.password_hash is None else Status.ACTIVE


async def _client_ids(session: AsyncSession, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
    rows = await session.execute(
        select(ClientAccess.client_id).where(ClientAccess.user_id == user_id)
    )
    return frozenset(rows.scalars().all())


def _staff_reaches(principal: Principal, user: User, clients: frozenset[uuid.UUID]) -> bool:
    own = principal.client_ids - principal.shared_client_ids
    return user.role == Role.CLIENT and bool(clients) and clients <= own


async def get_person(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    """The account, if the caller manages it; otherwise `NotFoundError`."""
    user = await session.get(User, user_id)
    if user is None or not may_open(principal):
        raise NotFoundError("user not found")
    if manages_everyone(principal):
        return user
    if principal.role is Role.STAFF and _staff_reaches(
        principal, user, await _client_ids(session, user.id)
    ):
        return user
    raise NotFoundError("user not found")


def _admin_only(principal: Principal) -> None:
    # Refused actions read as a missing page, like every resource the caller may not touch.
    if not manages_everyone(principal):
        raise NotFoundError("user not found")


async def list_people(
    session: AsyncSession,
    principal: Principal,
    *,
    search: str = "",
    limit: int = MAX_LISTED,
    context: audit.AuditContext | None = None,
) -> list[Person]:
    """The accounts the caller manages, by email, filtered by a part of the email or name;
    shown to someone (audited) when `context` is given."""
    if not may_open(principal):
        raise NotFoundError("no such page")
    query = select(User).order_by(col(User.email))
    words = search.strip().lower()[:200]
    if words:
        pattern = f"%{words}%"
        query = query.where(
            or_(
                func.lower(col(User.email)).like(pattern),
                func.lower(col(User.display_name)).like(pattern),
            )
        )
    if not manages_everyone(principal):
        own = principal.client_ids - principal.shared_client_ids
        members = select(ClientAccess.user_id).where(col(ClientAccess.client_id).in_(own))
        query = query.where(col(User.role) == Role.CLIENT, col(User.id).in_(members))
    users = list((await session.execute(query.limit(limit * 2))).scalars().all())
    ids = [u.id for u in users]
    access: dict[uuid.UUID, list[Client]] = {u: [] for u in ids}
    if ids:
        rows = await session.execute(
            select(ClientAccess.user_id, Client)
            .join(Client, col(Client.id) == col(ClientAccess.client_id))
            .where(col(ClientAccess.user_id).in_(ids))
            .order_by(col(Client.name_key))
        )
        for user_id, client in rows.all():
            access[user_id].append(client)
    if not manages_everyone(principal):
        users = [u for u in users if _staff_reaches(principal, u, _ids(access[u.id]))]
    users = users[:limit]
    signed_in = await last_sign_ins(session, [u.id for u in users])
    enrolled = set()
    if context is not None:
        await audit.record(
            session, context, AuditAction.USER_LISTED, details={"users": len(users), "query": words}
        )
    if users:
        found = await session.execute(
            select(TotpCredential.user_id).where(
                col(TotpCredential.user_id).in_([u.id for u in users]),
                col(TotpCredential.confirmed_at).is_not(None),
            )
        )
        enrolled = set(found.scalars().all())
    return [
        Person(
            user=u,
            clients=access[u.id],
            last_sign_in=signed_in.get(u.id),
            has_totp=u.id in enrolled,
            status=status_of(u),
        )
        for u in users
    ]


def _ids(clients: list[Client]) -> frozenset[uuid.UUID]:
    return frozenset(c.id for c in clients)


async def last_sign_ins(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """When each user last gave a right password (the audit log's `auth.login`)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(AuditEvent.actor_id, func.max(AuditEvent.ts))
        .where(
            col(AuditEvent.action) == "auth.login",
            col(AuditEvent.outcome) == "success",
            col(AuditEvent.actor_id).in_([str(u) for u in user_ids]),
        )
        .group_by(col(AuditEvent.actor_id))
    )
    found: dict[uuid.UUID, datetime] = {}
    for actor, ts in rows.all():
        if actor and ts:
            found[uuid.UUID(actor)] = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return found


async def person(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    context: audit.AuditContext | None = None,
) -> Person:
    """One account with its clients, last sign-in, second factor and status; shown to
    someone (audited) when `context` is given."""
    user = await get_person(session, principal, user_id)
    if context is not None:
        await audit.record(
            session, context, AuditAction.USER_VIEWED, target_type="user", target_id=user.id
        )
    clients = (
        (
            await session.execute(
                select(Client)
                .join(ClientAccess, col(ClientAccess.client_id) == col(Client.id))
                .where(col(ClientAccess.user_id) == user.id)
                .order_by(col(Client.name_key))
            )
        )
        .scalars()
        .all()
    )
    signed_in = await last_sign_ins(session, [user.id])
    return Person(
        user=user,
        clients=list(clients),
        last_sign_in=signed_in.get(user.id),
        has_totp=await mfa.has_totp(session, user.id),
        status=status_of(user),
    )


async def set_role(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user_id: uuid.UUID,
    role: Role,
) -> User:
    """Change someone's role (admins); they sign in again at the new privilege level."""
    _admin_only(principal)
    user = await get_person(session, principal, user_id)
    if user.id == principal.user_id:
        raise ConflictError("admins do not change their own role")
    if user.role == role:
        return user
    before = user.role
    user.role = role
    session.add(user)
    ended = await sessions.end_all(session, user.id)
    await audit.record(
        session,
        context,
        AuditAction.USER_ROLE_CHANGED,
        target_type="user",
        target_id=user.id,
        details={
            "from": str(before),
            "to": role.value,
            "sessions_ended": ended.sessions,
            "tokens_revoked": ended.tokens,
        },
    )
    return user


async def set_active(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user_id: uuid.UUID,
    *,
    active: bool,
) -> User:
    """Disable an account (every session and token stops working at once) or enable it."""
    user = await get_person(session, principal, user_id)
    if user.id == principal.user_id:
        raise ConflictError("nobody disables their own account")
    if user.is_active == active:
        return user
    user.is_active = active
    session.add(user)
    ended = await sessions.end_all(session, user.id)
    await audit.record(
        session,
        context,
        AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED,
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended.sessions, "tokens_revoked": ended.tokens},
    )
    return user


async def update_user(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user_id: uuid.UUID,
    *,
    role: Role | None = None,
    active: bool | None = None,
) -> User:
    """Change someone's role and/or whether their account works (None leaves it alone): each
    change ends their sessions and tokens and is its own audit event."""
    user = await get_person(session, principal, user_id)
    if role is not None:
        user = await set_role(session, principal, context, user_id, role)
    if active is not None:
        user = await set_active(session, principal, context, user_id, active=active)
    return user


async def reset_second_factor(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, user_id: uuid.UUID
) -> User:
    """Remove a lost authenticator (admins; staff for the client users they manage): the user
    enrols again at the next sign-in, and every session and token of theirs ends, as whoever
    holds the lost device may hold those."""
    user = await get_person(session, principal, user_id)
    await mfa.reset_totp(session, context, user)
    ended = await sessions.end_all(session, user.id)
    await audit.record(
        session,
        context,
        AuditAction.SESSION_REVOKED_ALL,
        target_type="user",
        target_id=user.id,
        details={
            "sessions_ended": ended.sessions,
            "tokens_revoked": ended.tokens,
            "reason": "second factor reset",
        },
    )
    return user


async def set_client_access(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    granted: bool,
) -> User:
    """Assign a staff member to a client, or add a client user to one (admins); or undo it.

    Staff add the client users they manage to their own clients, or remove them from one; a
    client that is not theirs is not there for them (404). They never remove someone's last
    client, which would put the person out of their own reach (409)."""
    user = await get_person(session, principal, user_id)
    if user.role not in (Role.CLIENT, Role.STAFF):
        raise ConflictError("only staff and client users are given clients")
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFoundError("client not found")
    if not manages_everyone(principal):
        if client.shared or not allows(principal, Permission.INVITE, client_id):
            raise NotFoundError("client not found")
        if not granted and await _client_ids(session, user.id) == {client_id}:
            raise ConflictError("staff do not remove a client user's last client")
    row = await session.get(ClientAccess, (user.id, client_id))
    if granted and row is None:
        session.add(ClientAccess(user_id=user.id, client_id=client_id))
        action = AuditAction.USER_ACCESS_GRANTED
    elif not granted and row is not None:
        await session.delete(row)
        action = AuditAction.USER_ACCESS_REVOKED
    else:
        return user
    await session.flush()
    await audit.record(
        session,
        context,
        action,
        client_id=client_id,
        target_type="user",
        target_id=user.id,
        details={"role": str(user.role)},
    )
    return user


async def resend_invitation(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user_id: uuid.UUID,
    *,
    valid_for: timedelta,
) -> tuple[User, str, list[Client]]:
    """A fresh invitation link for someone who never accepted (the old link stops working).

    Returns the user, the link's secret (for the email, once) and their clients."""
    found = await person(session, principal, user_id)
    if found.status is not Status.INVITED:
        raise ConflictError("this person already accepted the invitation")
    inviter = await session.get(User, principal.user_ref) if principal.user_ref else None
    secret = await email_links.issue(
        session, EmailLinkPurpose.INVITATION, found.user, valid_for=valid_for, created_by=inviter
    )
    await audit.record(
        session,
        context,
        AuditAction.USER_INVITATION_RESENT,
        target_type="user",
        target_id=found.user.id,
        details={
            "email": found.user.email,
            "expires_in_hours": round(valid_for.total_seconds() / 3600, 2),
        },
    )
    return found.user, secret, found.clients
