"""Asking for the password (and second factor) again before a sensitive change.

Changing the password, making recovery codes, creating a personal access token and turning
on two-step sign-in from a signed-in session all need the current password (ASVS 5.0 §6.4
re-authentication): someone at a browser left signed in must not take over the account.

Two rules from the security review (issue 13):
- the Argon2 run happens outside any database transaction (item 5). On SQLite every
  transaction takes the database-wide write lock (`BEGIN IMMEDIATE`), so a hash inside one
  stalls every other request of the portal for its duration;
- a wrong password counts with failed sign-ins against the same per-account limit (item 6),
  so a stolen session cannot be used to guess the password at full speed, and a locked
  account refuses these checks as it refuses sign-in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vault import audit
from vault.accounts import mfa, ratelimit, sessions
from vault.accounts.passwords import (
    check_password_policy,
    dummy_verify,
    hash_password,
    off_loop,
    verify_password,
)
from vault.accounts.signin import SignInPolicy, account_key
from vault.audit.actions import AuditAction
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import NotFoundError
from vault.models import User


@dataclass(frozen=True, slots=True)
class Check:
    """The answer to a re-authentication: `ok`, or why not."""

    ok: bool
    # Set when the account is locked (by earlier failures, or by this one).
    locked_until: datetime | None = None
    # The account was locked by this very attempt: tell its owner (once).
    lockout: User | None = None


async def check_password(
    sessions: async_sessionmaker[AsyncSession],
    ph: PasswordHasher,
    context: audit.AuditContext,
    policy: SignInPolicy,
    user_id: uuid.UUID,
    password: str,
    *,
    action: AuditAction,
    now: datetime | None = None,
) -> Check:
    """Check the current password of `user_id`, outside any transaction the caller holds.

    A refusal is recorded as a failed `action` (and counted) in its own transaction, so the
    caller may answer with an error without losing it.
    """
    moment = now or datetime.now(UTC)
    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFoundError("user not found")
        key = account_key(user.email)
        locked = await ratelimit.check(session, key, now=moment)
        if locked is not None:
            await audit.record(
                session, context, action, outcome="locked", target_type="user", target_id=user_id
            )
            return Check(False, locked_until=locked)
        stored = user.password_hash
    # No transaction is open here: the hash cannot hold the database's write lock.
    if stored is None:
        await off_loop(dummy_verify, password, ph)
        ok = False
    else:
        ok = await off_loop(verify_password, stored, password, ph)
    async with transaction(sessions) as session:
        # Checked again now that the hash is done: guesses sent all at once passed the first
        # check together, and only those concluded before the lock may count or succeed.
        locked = await ratelimit.check_for_update(session, key, now=datetime.now(UTC))
        if locked is not None:
            await audit.record(
                session, context, action, outcome="locked", target_type="user", target_id=user_id
            )
            return Check(False, locked_until=locked)
        if ok:
            return Check(True)
        _, crossed = await ratelimit.fail(session, key, policy.account_limits, now=moment)
        await audit.record(
            session, context, action, outcome="failure", target_type="user", target_id=user_id
        )
        if crossed is not None:
            await audit.record(
                session,
                context,
                AuditAction.AUTH_LOCKOUT,
                target_type="user",
                target_id=user_id,
                details={"until": audit.timestamp(crossed), "step": "reauthentication"},
            )
    return Check(False, locked_until=crossed, lockout=user if crossed is not None else None)


async def check_second_factor(
    session: AsyncSession,
    keyring: Keyring,
    context: audit.AuditContext,
    policy: SignInPolicy,
    user: User,
    code: str,
    *,
    action: AuditAction,
    now: datetime | None = None,
) -> Check:
    """Check a TOTP or recovery code of a user who has TOTP, counted like the sign-in step's
    codes; `ok` at once for a user without it. Commit the transaction whatever the answer."""
    if not await mfa.has_totp(session, user.id):
        return Check(True)
    moment = now or datetime.now(UTC)
    key = ratelimit.key_for("mfa-account", str(user.id))
    locked = await ratelimit.check(session, key, now=moment)
    if locked is not None:
        await audit.record(
            session, context, action, outcome="locked", target_type="user", target_id=user.id
        )
        return Check(False, locked_until=locked)
    if await mfa.verify_code(session, keyring, user, code, now=moment) is not None:
        await ratelimit.succeed(session, key)
        return Check(True)
    _, crossed = await ratelimit.fail(session, key, policy.account_limits, now=moment)
    await audit.record(
        session, context, action, outcome="failure", target_type="user", target_id=user.id
    )
    return Check(False, locked_until=crossed, lockout=user if crossed is not None else None)


async def change_password(
    sessions_: async_sessionmaker[AsyncSession],
    ph: PasswordHasher,
    context: audit.AuditContext,
    policy: SignInPolicy,
    user: User,
    *,
    current: str,
    new: str,
    keep_session: str | None,
) -> Check:
    """Change a password, given the current one; ends every other session of the user and
    revokes their personal access tokens. Call it outside any transaction: both Argon2
    runs happen between transactions (issue 13 item 5).

    A wrong `current` is counted with failed sign-ins (item 6) and answered by a `Check`
    that is not ok. Raises WeakPasswordError for a weak `new`.
    """
    check = await check_password(
        sessions_, ph, context, policy, user.id, current, action=AuditAction.AUTH_PASSWORD_CHANGED
    )
    if not check.ok:
        return check
    check_password_policy(new, email=user.email, display_name=user.display_name)
    new_hash = await off_loop(hash_password, new, ph)
    async with transaction(sessions_) as session:
        row = await session.get(User, user.id, populate_existing=True)
        if row is None:
            raise NotFoundError("user not found")
        row.password_hash = new_hash
        session.add(row)
        ended = await sessions.end_all(session, user.id, keep=keep_session)
        await audit.record(
            session,
            context,
            AuditAction.AUTH_PASSWORD_CHANGED,
            target_type="user",
            target_id=user.id,
            details={"sessions_ended": ended.sessions, "tokens_revoked": ended.tokens},
        )
    return check
