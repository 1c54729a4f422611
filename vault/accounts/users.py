"""Users, their client access, and personal access tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import literal, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.accounts import profiles
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, InvalidEmailError, NotFoundError
from vault.models import AccessToken, Client, ClientAccess, Role, TokenScope, User
from vault.policy import Principal

_MEMBER, _SHARED, _ARCHIVED = "member", "shared", "archived"
TOKEN_NAME_LENGTH = 200  # the width of access_tokens.name
TOKEN_PREFIX = "cvt_"  # noqa: S105 (a public marker that lets secret scanners spot tokens)


def normalise_email(email: str) -> str:
    email = email.strip()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidEmailError("not an email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


async def find_user(session: AsyncSession, email: str) -> User | None:
    key = normalise_email(email)
    return (await session.execute(select(User).where(User.email == key))).scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    email: str,
    role: Role,
    client_ids: list[uuid.UUID] | None = None,
    password_hash: str | None = None,
    display_name: str = "",
) -> User:
    """Create a user with access to `client_ids` (clients and staff only).

    Raises:
        ProfileError: the display name breaks the rules of `profiles.check_display_name`.
    """
    email = normalise_email(email)
    # Every path that stores a name passes here, so none can store a direction override.
    display_name = profiles.check_display_name(display_name)
    if await find_user(session, email) is not None:
        raise ConflictError(f"a user with email {email} already exists")
    user = User(email=email, role=role, password_hash=password_hash, display_name=display_name)
    session.add(user)
    await session.flush()
    for client_id in client_ids or []:
        session.add(ClientAccess(user_id=user.id, client_id=client_id))
    await audit.record(
        session,
        context,
        AuditAction.USER_CREATED,
        target_type="user",
        target_id=user.id,
        details={"role": role.value, "clients": [str(c) for c in client_ids or []]},
    )
    return user


async def grant_access(
    session: AsyncSession, context: audit.AuditContext, user: User, client_id: uuid.UUID
) -> None:
    exists = await session.get(ClientAccess, (user.id, client_id))
    if exists is None:
        session.add(ClientAccess(user_id=user.id, client_id=client_id))
        await audit.record(
            session,
            context,
            AuditAction.USER_ACCESS_GRANTED,
            client_id=client_id,
            target_type="user",
            target_id=user.id,
        )


async def principal_for(session: AsyncSession, user: User, *, read_only: bool = False) -> Principal:
    # One statement, not three: every authenticated request builds a principal.
    member = select(ClientAccess.client_id, literal(_MEMBER).label("kind")).where(
        ClientAccess.user_id == user.id
    )
    shared = select(Client.id, literal(_SHARED).label("kind")).where(col(Client.shared).is_(True))
    archived = select(Client.id, literal(_ARCHIVED).label("kind")).where(
        col(Client.archived_at).is_not(None)
    )
    found: dict[str, set[uuid.UUID]] = {_MEMBER: set(), _SHARED: set(), _ARCHIVED: set()}
    for client_id, kind in await session.execute(union_all(member, shared, archived)):
        found[kind].add(client_id)
    role = Role(user.role)
    return Principal(
        user_id=user.id,
        email=user.email,
        role=role,
        client_ids=frozenset(found[_MEMBER]),
        read_only=read_only,
        # Sharing opens a client to client users and staff; admins see every client anyway.
        shared_client_ids=(
            frozenset(found[_SHARED]) if role in (Role.CLIENT, Role.STAFF) else frozenset()
        ),
        archived_client_ids=frozenset(found[_ARCHIVED]),
    )


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
    *,
    name: str = "",
    scope: TokenScope = TokenScope.READ_WRITE,
    expires_in: timedelta | None = None,
    clients_allowed: bool = True,
) -> tuple[AccessToken, str]:
    """A new personal access token; the secret is returned once and stored only hashed.

    Raises:
        NotFoundError: `user` is a client user and the firm offers tokens to staff only
            (`clients_allowed` false).
    """
    if user.role == Role.CLIENT and not clients_allowed:
        raise NotFoundError("personal access tokens are not offered to client users")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken(
        user_id=user.id,
        name=name.strip()[:TOKEN_NAME_LENGTH],
        token_hash=_hash_token(secret),
        scope=scope,
        expires_at=datetime.now(UTC) + expires_in if expires_in else None,
    )
    session.add(token)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.TOKEN_CREATED,
        target_type="token",
        target_id=token.id,
        details={"user": str(user.id), "scope": scope.value, "name": name},
    )
    return token, secret


async def authenticate_token(
    session: AsyncSession,
    secret: str,
    *,
    ip: str | None = None,
    max_lifetime: timedelta | None = None,
) -> tuple[User, AccessToken] | None:
    """The user behind a live token, or None (unknown, revoked, expired, inactive user).

    A token older than `max_lifetime` is expired whatever its own expiry says (issue 13
    item 4: one made before the limit, by the CLI, or before the limit was lowered).
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    # The token and its user in one statement: every API request makes it.
    found = (
        await session.execute(
            select(AccessToken, User)
            .join(User, col(User.id) == col(AccessToken.user_id))
            .where(AccessToken.token_hash == _hash_token(secret))
        )
    ).one_or_none()
    if found is None:
        return None
    token, user = found
    now = datetime.now(UTC)
    if token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if max_lifetime is not None and token.created_at + max_lifetime <= now:
        return None
    if not user.is_active:
        return None
    # Coarse last-use tracking keeps token auth from writing on every request; a new
    # address is written at once, so its owner sees where a leaked token is used from.
    address = (ip or "")[:64] or None
    stale = token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5)
    if stale or address != token.last_used_ip:
        token.last_used_at = now
        token.last_used_ip = address
        session.add(token)
    return user, token


async def list_tokens(
    session: AsyncSession, user: User, *, context: audit.AuditContext | None = None
) -> Sequence[AccessToken]:
    """The user's tokens, newest first (revoked ones too, for the record); shown to someone
    (audited) when `context` is given."""
    rows = (
        (
            await session.execute(
                select(AccessToken)
                .where(AccessToken.user_id == user.id)
                .order_by(col(AccessToken.created_at).desc())
            )
        )
        .scalars()
        .all()
    )
    if context is not None:
        await audit.record(
            session,
            context,
            AuditAction.TOKEN_LISTED,
            target_type="user",
            target_id=user.id,
            details={"tokens": len(rows)},
        )
    return rows


async def revoke_token(
    session: AsyncSession, context: audit.AuditContext, user: User, token_id: uuid.UUID
) -> None:
    token = await session.get(AccessToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFoundError("no such token")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        session.add(token)
        await audit.record(
            session, context, AuditAction.TOKEN_REVOKED, target_type="token", target_id=token.id
        )
