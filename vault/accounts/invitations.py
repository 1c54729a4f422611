"""Invitations: staff invite client users to their clients, admins invite anyone.

Inviting creates the user without a password and issues a single-use, expiring link; the
invitee chooses a password through that link. Inviting someone who was invited before but
never accepted sends a fresh link (the old one stops working) and adds the new clients.

Staff see only their own clients, so an address that belongs to anyone else (another
client's user, a pending invitation to another client, the firm's own people) gets the same
answer as a brand-new one and nothing changes: no access is granted and the other
invitation's link stays live (review item 7). Only admins, who see every account anyway,
are told that an address is taken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from vault import audit
from vault.accounts import email_links, profiles
from vault.accounts import users as accounts
from vault.accounts.identity import EmailLinkPurpose
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, InvalidInput, NotFoundError
from vault.models import Client, ClientAccess, Role, User
from vault.policy import Permission, Principal, allows, require


@dataclass(frozen=True, slots=True)
class Invited:
    user: User
    secret: str  # goes into the emailed link, once; empty when withheld
    # The address belongs to someone the inviter may not know about: nothing was changed and
    # nothing may be sent, but the inviter is answered as for a fresh invitation.
    withheld: bool = False


async def _known_to(session: AsyncSession, principal: Principal, user: User) -> bool:
    """Whether the inviter may learn that `user` exists: a client user of only the inviter's
    own clients (so the account, and any pending invitation, are theirs to handle)."""
    if user.role != Role.CLIENT:
        return False
    access = frozenset(
        (
            await session.execute(
                select(ClientAccess.client_id).where(ClientAccess.user_id == user.id)
            )
        )
        .scalars()
        .all()
    )
    return bool(access) and access <= principal.client_ids


async def invite(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    email: str,
    role: Role,
    client_ids: list[uuid.UUID],
    valid_for: timedelta,
    display_name: str = "",
) -> Invited:
    """Invite `email` as `role` with access to `client_ids`.

    Raises:
        NotFoundError: a client is unknown or hidden from the caller.
        PermissionDeniedError: the caller may not invite this role.
        ConflictError: the address already belongs to an account in use.
        InvalidEmailError: the address is not an email address.
        InvalidInput: a client user is given no client.
        ProfileError: the display name breaks the rules of `profiles.check_display_name`.
    """
    # The inviter chooses the name the firm will show: it must not be a look-alike (item 11).
    display_name = profiles.check_display_name(display_name)
    if role is Role.CLIENT:
        if not client_ids:
            raise InvalidInput(
                "a client user needs at least one client", field="client_ids", rule="required"
            )
        for client_id in client_ids:
            require(principal, Permission.INVITE, client_id)
            if await session.get(Client, client_id) is None:
                raise NotFoundError("client not found")
    else:
        # Staff, auditors and admins are the firm's own people: only admins add them.
        require(principal, Permission.MANAGE, None)
        for client_id in client_ids:
            if await session.get(Client, client_id) is None:
                raise NotFoundError("client not found")
        if role is not Role.STAFF:
            client_ids = []
    user = await accounts.find_user(session, email)
    manager = allows(principal, Permission.MANAGE, None)
    if user is not None and not manager and not await _known_to(session, principal, user):
        # Recorded for the auditors, answered as a success: a 409 here told Acme's staff that
        # pending-beta@ was Beta's, and re-issuing killed the admin's link (review item 7).
        await audit.record(
            session,
            context,
            AuditAction.USER_INVITED,
            outcome="denied",
            target_type="user",
            target_id=user.id,
            details={
                "email": user.email,
                "role": role,
                "clients": [str(c) for c in client_ids],
                "reason": "the address belongs to an account the inviter cannot see",
            },
        )
        return Invited(user=user, secret="", withheld=True)
    if user is None:
        user = await accounts.create_user(
            session,
            context,
            email=email,
            role=role,
            client_ids=client_ids,
            display_name=display_name,
        )
    elif user.password_hash is not None or not user.is_active:
        raise ConflictError("this address already has an account")
    elif user.role != role:
        raise ConflictError(f"this address was invited as {user.role} before")
    else:
        for client_id in client_ids:
            await accounts.grant_access(session, context, user, client_id)
    inviter = await session.get(User, principal.user_ref) if principal.user_ref else None
    secret = await email_links.issue(
        session, EmailLinkPurpose.INVITATION, user, valid_for=valid_for, created_by=inviter
    )
    await audit.record(
        session,
        context,
        AuditAction.USER_INVITED,
        target_type="user",
        target_id=user.id,
        details={
            "email": user.email,
            "role": user.role,
            "clients": [str(c) for c in client_ids],
            "expires_in_hours": round(valid_for.total_seconds() / 3600, 2),
        },
    )
    return Invited(user=user, secret=secret)


async def accept(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    secret: str,
    password: str,
    password_hash: str,
    locale: str | None = None,
) -> User | None:
    """Set the invitee's first password through the link; None if the link is not live.

    `password_hash` is `password` hashed by the caller outside any transaction (issue 13
    item 5: no Argon2 run while SQLite's write lock is held).

    `locale`, the language the invitee's browser asked for, becomes their language (pages
    and emails) until they choose another.

    Raises:
        WeakPasswordError: the password breaks the policy (the link stays usable).
    """
    user = await email_links.set_password(
        session, EmailLinkPurpose.INVITATION, secret, password, password_hash
    )
    if user is None:
        return None
    if locale:
        user.locale = locale
    await audit.record(
        session,
        context.acting_as(user.id, user.role),
        AuditAction.USER_INVITATION_ACCEPTED,
        target_type="user",
        target_id=user.id,
    )
    return user


def invitable_roles(principal: Principal) -> list[Role]:
    """The roles `principal` may invite, as `invite` enforces: admins anyone, staff (not
    read-only) client users only, everyone else no one."""
    if allows(principal, Permission.MANAGE, None):
        return [Role.CLIENT, Role.STAFF, Role.AUDITOR, Role.ADMIN]
    if principal.role is Role.STAFF and not principal.read_only:
        return [Role.CLIENT]
    return []
