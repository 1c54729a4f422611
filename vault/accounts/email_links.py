"""Single-use, expiring links sent by email: invitations and password resets.

The link carries 256 random bits; only their SHA-256 is stored. Redeeming marks the row used
in the same transaction that sets the password, with a conditional update, so two clicks
racing on two app processes cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.accounts.identity import EmailLink, EmailLinkPurpose
from vault.accounts.passwords import check_password_policy
from vault.audit.actions import AuditAction
from vault.models import User


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def issue(
    session: AsyncSession,
    purpose: EmailLinkPurpose,
    user: User,
    *,
    valid_for: timedelta,
    created_by: User | None = None,
    now: datetime | None = None,
) -> str:
    """A new link secret for `user`. Earlier unused links of the same purpose stop working,
    so only the newest email in someone's inbox is live."""
    moment = now or datetime.now(UTC)
    await session.execute(
        delete(EmailLink).where(
            col(EmailLink.user_id) == user.id,
            col(EmailLink.purpose) == purpose,
            col(EmailLink.used_at).is_(None),
        )
    )
    secret = secrets.token_urlsafe(32)
    session.add(
        EmailLink(
            purpose=purpose,
            token_hash=_hash(secret),
            user_id=user.id,
            created_by=created_by.id if created_by else None,
            created_at=moment,
            expires_at=moment + valid_for,
        )
    )
    await session.flush()
    return secret


async def peek(
    session: AsyncSession, purpose: EmailLinkPurpose, secret: str, *, now: datetime | None = None
) -> User | None:
    """The user a live link belongs to, without using it up (to show the form)."""
    link = await _live(session, purpose, secret, now or datetime.now(UTC))
    if link is None:
        return None
    user = await session.get(User, link.user_id)
    return user if user is not None and user.is_active else None


async def view(
    session: AsyncSession,
    context: audit.AuditContext,
    purpose: EmailLinkPurpose,
    secret: str,
    *,
    now: datetime | None = None,
) -> User | None:
    """`peek`, for showing the link's form to whoever followed it: audited as a read."""
    user = await peek(session, purpose, secret, now=now)
    if user is not None:
        await audit.record(
            session,
            context,
            AuditAction.AUTH_LINK_VIEWED,
            target_type="user",
            target_id=user.id,
            details={"purpose": purpose.value},
        )
    return user


async def redeem(
    session: AsyncSession, purpose: EmailLinkPurpose, secret: str, *, now: datetime | None = None
) -> User | None:
    """Use the link up and return its user; None if unknown, used, expired or inactive."""
    moment = now or datetime.now(UTC)
    link = await _live(session, purpose, secret, moment)
    if link is None:
        return None
    result = await session.execute(
        update(EmailLink)
        .where(col(EmailLink.id) == link.id, col(EmailLink.used_at).is_(None))
        .values(used_at=moment)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    user = await session.get(User, link.user_id)
    return user if user is not None and user.is_active else None


async def set_password(
    session: AsyncSession,
    purpose: EmailLinkPurpose,
    secret: str,
    password: str,
    password_hash: str,
    *,
    now: datetime | None = None,
) -> User | None:
    """Use the link up to set its user's password; None if the link is not live.

    `password_hash` is `password` hashed by the caller outside any transaction: Argon2
    inside one would hold SQLite's write lock for its whole run (issue 13 item 5).
    Raises WeakPasswordError before anything is written, so the link stays usable.
    """
    user = await peek(session, purpose, secret, now=now)
    if user is None:
        return None
    check_password_policy(password, email=user.email, display_name=user.display_name)
    if await redeem(session, purpose, secret, now=now) is None:
        return None
    user.password_hash = password_hash
    session.add(user)
    return user


async def _live(
    session: AsyncSession, purpose: EmailLinkPurpose, secret: str, now: datetime
) -> EmailLink | None:
    if not secret or len(secret) > 128:
        return None
    link = (
        await session.execute(select(EmailLink).where(EmailLink.token_hash == _hash(secret)))
    ).scalar_one_or_none()
    if link is None or link.purpose != purpose or link.used_at is not None:
        return None
    if link.expires_at <= now:
        return None
    return link
