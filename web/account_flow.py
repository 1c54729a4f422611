"""Steps of managing one's own account, shared by the JSON API and the browser pages.

They run inside the caller's transaction, after the caller was authenticated (with its CSRF
token) by the route, and leave the answer's shape to it.
"""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from vault import accounts, audit, sessions, signin
from vault.identity import BrowserSession
from vault.models import AccessToken, TokenScope, User

# Personal access tokens live at most a year (and a leap day).
MAX_TOKEN_DAYS = 366
TOKEN_NAME_LENGTH = 200


async def end_other_sessions(
    session: AsyncSession, context: audit.AuditContext, user: User, browser: BrowserSession
) -> int:
    """Sign out everywhere else; returns how many sessions ended."""
    ended = await sessions.end_all(session, user.id, keep=browser.id)
    await audit.record(
        session,
        context,
        "session.revoked_all",
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended},
    )
    return ended


async def change_password(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
    browser: BrowserSession,
    *,
    ph: PasswordHasher,
    current: str,
    new: str,
) -> bool:
    """Change the password, keeping this session and ending every other one.

    Returns False when the current password is wrong; raises WeakPasswordError for a weak
    new one. The caller sends `signin_flow.password_changed_task` once committed.
    """
    return await signin.change_password(
        session,
        ph,
        context,
        user,
        current=current,
        new=new,
        keep_session=browser.id,
    )


async def create_token(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
    *,
    name: str,
    scope: TokenScope,
    days: int | None,
) -> tuple[AccessToken, str]:
    """A new personal access token (`days` None: it never expires); the secret, once."""
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValueError(f"expiry must be 1..{MAX_TOKEN_DAYS} days")
    return await accounts.create_token(
        session,
        context,
        user,
        name=name.strip()[:TOKEN_NAME_LENGTH],
        scope=scope,
        expires_in=timedelta(days=days) if days else None,
    )
