"""Server-side browser sessions: start, look up with idle and absolute timeouts, rotate, revoke.

The cookie holds 256 random bits; the database keeps only their SHA-256, so a copy of the
database does not let anyone take over a session. Rotation (after the second factor, on a
privilege change) issues a new secret and revokes the old one, so a session id planted
before sign-in never becomes an authenticated one.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.accounts.identity import BrowserSession, SessionStage
from vault.audit.actions import AuditAction
from vault.models import AccessToken, User

# Writing `last_seen_at` on every request would turn each read into a write; a minute of
# slack on a 30-minute idle timeout is harmless.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Started:
    """A new session: the secret goes into the cookie once and is never stored."""

    secret: str
    row: BrowserSession


def session_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def start(
    session: AsyncSession,
    user: User,
    stage: SessionStage,
    *,
    policy: SessionPolicy,
    ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> Started:
    moment = now or datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    row = BrowserSession(
        id=session_hash(secret),
        handle=secrets.token_urlsafe(12),
        user_id=user.id,
        stage=stage,
        csrf_token=secrets.token_urlsafe(32),
        created_at=moment,
        last_seen_at=moment,
        expires_at=expires_at or moment + policy.absolute,
        ip=ip,
        user_agent=(user_agent or "")[:256] or None,
    )
    session.add(row)
    await session.flush()
    return Started(secret=secret, row=row)


async def lookup(
    session: AsyncSession, secret: str, *, policy: SessionPolicy, now: datetime | None = None
) -> tuple[BrowserSession, User] | None:
    """The live session behind a cookie value and its user, or None."""
    if not secret or len(secret) > 128:
        return None
    moment = now or datetime.now(UTC)
    row = await session.get(BrowserSession, session_hash(secret))
    if row is None or row.revoked_at is not None:
        return None
    if moment >= row.expires_at or moment - row.last_seen_at >= policy.idle:
        return None
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if moment - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = moment
        session.add(row)
    return row, user


async def rotate(
    session: AsyncSession,
    old: BrowserSession,
    user: User,
    stage: SessionStage,
    *,
    policy: SessionPolicy,
    now: datetime | None = None,
) -> Started:
    """Replace `old` by a new session (new secret, new CSRF token) at `stage`.

    The absolute timeout still counts from the original sign-in.
    """
    moment = now or datetime.now(UTC)
    old.revoked_at = moment
    session.add(old)
    return await start(
        session,
        user,
        stage,
        policy=policy,
        ip=old.ip,
        user_agent=old.user_agent,
        now=moment,
        expires_at=old.expires_at,
    )


async def end(session: AsyncSession, row: BrowserSession) -> None:
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        await session.flush()


async def sign_out(
    session: AsyncSession, context: audit.AuditContext, row: BrowserSession, user_id: uuid.UUID
) -> None:
    """End the browser session `row` of `user_id` at their asking, audited."""
    await end(session, row)
    await audit.record(
        session, context, AuditAction.AUTH_LOGOUT, target_type="user", target_id=user_id
    )


class Ended(NamedTuple):
    """What a sign-out everywhere ended: browser sessions and personal access tokens."""

    sessions: int
    tokens: int


async def end_all(session: AsyncSession, user_id: uuid.UUID, *, keep: str | None = None) -> Ended:
    """Revoke every live session of a user except the one with id `keep`, and every personal
    access token of the user: a credential event (password change or reset, second factor
    reset, account disabled, sign out everywhere) must not leave a token that still works
    (issue 13 item 4)."""
    moment = datetime.now(UTC)
    query = update(BrowserSession).where(
        col(BrowserSession.user_id) == user_id, col(BrowserSession.revoked_at).is_(None)
    )
    if keep is not None:
        query = query.where(col(BrowserSession.id) != keep)
    result = await session.execute(query.values(revoked_at=moment))
    tokens = await session.execute(
        update(AccessToken)
        .where(col(AccessToken.user_id) == user_id, col(AccessToken.revoked_at).is_(None))
        .values(revoked_at=moment)
    )
    return Ended(int(getattr(result, "rowcount", 0) or 0), int(getattr(tokens, "rowcount", 0) or 0))


async def end_others(
    session: AsyncSession, context: audit.AuditContext, user: User, keep: BrowserSession
) -> Ended:
    """Sign out everywhere but `keep` (audited), personal access tokens included."""
    ended = await end_all(session, user.id, keep=keep.id)
    await audit.record(
        session,
        context,
        AuditAction.SESSION_REVOKED_ALL,
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended.sessions, "tokens_revoked": ended.tokens},
    )
    return ended


async def live_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, policy: SessionPolicy, now: datetime | None = None
) -> Sequence[BrowserSession]:
    moment = now or datetime.now(UTC)
    return (
        (
            await session.execute(
                select(BrowserSession)
                .where(
                    BrowserSession.user_id == user_id,
                    col(BrowserSession.revoked_at).is_(None),
                    col(BrowserSession.expires_at) > moment,
                    col(BrowserSession.last_seen_at) > moment - policy.idle,
                )
                .order_by(col(BrowserSession.last_seen_at).desc())
            )
        )
        .scalars()
        .all()
    )


async def end_by_handle(
    session: AsyncSession, context: audit.AuditContext, user: User, handle: str
) -> bool:
    """Revoke one of the user's own sessions by its public handle; False if none such."""
    row = (
        await session.execute(
            select(BrowserSession).where(
                BrowserSession.handle == handle, BrowserSession.user_id == user.id
            )
        )
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return False
    await end(session, row)
    await audit.record(
        session,
        context,
        AuditAction.SESSION_REVOKED,
        target_type="user",
        target_id=user.id,
        details={"session": handle},
    )
    return True


async def purge(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete sessions that ended more than a day ago (for `gc`)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=1)
    result = await session.execute(
        delete(BrowserSession).where(
            or_(col(BrowserSession.expires_at) < cutoff, col(BrowserSession.revoked_at) < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
