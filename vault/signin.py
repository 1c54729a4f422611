"""Signing in: the password step, the second factor, password changes and resets.

Every attempt is an audit event. Failures are counted per account and per address in the
database (`vault.ratelimit`), so the limits hold across app processes. An unknown address
goes through the same steps as a known one (a dummy Argon2 verification included), so
neither the answer nor its timing tells whether an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from vault import accounts, audit, email_links, mfa, ratelimit, sessions
from vault.identity import EmailLinkPurpose, SessionStage
from vault.keyring import Keyring
from vault.models import Role, User
from vault.passwords import (
    check_password_policy,
    dummy_verify,
    hash_password,
    needs_rehash,
    off_loop,
    verify_password,
)


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    account_limits: ratelimit.Limits = field(default_factory=ratelimit.Limits)
    address_limits: ratelimit.Limits = field(
        default_factory=lambda: ratelimit.Limits(max_failures=50)
    )
    # Roles that must enrol TOTP before reaching anything.
    mfa_roles: frozenset[Role] = frozenset({Role.STAFF, Role.AUDITOR, Role.ADMIN})


class Outcome(StrEnum):
    SIGNED_IN = "signed-in"
    SECOND_FACTOR = "second-factor"  # password right, a code is needed next
    ENROL = "enrol"  # password right, TOTP enrolment is needed next
    REFUSED = "refused"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    user: User | None = None
    retry_after: datetime | None = None
    # The account was locked by this very attempt: tell its owner (once).
    lockout: User | None = None

    @property
    def stage(self) -> SessionStage:
        return {
            Outcome.SIGNED_IN: SessionStage.FULL,
            Outcome.SECOND_FACTOR: SessionStage.SECOND_FACTOR,
            Outcome.ENROL: SessionStage.ENROL,
        }[self.outcome]


def _account_key(email: str) -> str:
    try:
        email = accounts.normalise_email(email)
    except ValueError:
        email = email.strip()
    return ratelimit.key_for("login-account", email.lower())


def _address_key(ip: str | None) -> str:
    return ratelimit.key_for("login-address", ip or "unknown")


async def _locked(session: AsyncSession, keys: list[str], now: datetime) -> datetime | None:
    until = [u for k in keys if (u := await ratelimit.check(session, k, now=now)) is not None]
    return max(until) if until else None


async def password_step(
    session: AsyncSession,
    ph: PasswordHasher,
    context: audit.AuditContext,
    policy: SignInPolicy,
    *,
    email: str,
    password: str,
    now: datetime | None = None,
) -> Attempt:
    """Check an email and password. Commit the transaction whatever the outcome: the
    failure count and the audit event must persist when the caller answers 401."""
    moment = now or datetime.now(UTC)
    account_key, address_key = _account_key(email), _address_key(context.ip)
    locked = await _locked(session, [account_key, address_key], moment)
    if locked is not None:
        await audit.record(
            session, context, "auth.login", outcome="locked", details={"email": email[:320]}
        )
        return Attempt(Outcome.LOCKED, retry_after=locked)
    try:
        user = await accounts.find_user(session, email)
    except ValueError:
        user = None
    if user is None or user.password_hash is None or not user.is_active:
        await off_loop(dummy_verify, password, ph)
        ok = False
    else:
        ok = await off_loop(verify_password, user.password_hash, password, ph)
    if not ok:
        _, account_locked = await ratelimit.fail(
            session, account_key, policy.account_limits, now=moment
        )
        await ratelimit.fail(session, address_key, policy.address_limits, now=moment)
        await audit.record(
            session,
            context,
            "auth.login",
            outcome="failure",
            target_type="user" if user else None,
            target_id=user.id if user else None,
            details={"email": email[:320]},
        )
        lockout = None
        if account_locked is not None and user is not None:
            await audit.record(
                session,
                context,
                "auth.lockout",
                target_type="user",
                target_id=user.id,
                details={"until": audit.timestamp(account_locked)},
            )
            lockout = user
        return Attempt(
            Outcome.REFUSED, lockout=lockout, retry_after=account_locked if lockout else None
        )
    assert user is not None and user.password_hash is not None
    await ratelimit.succeed(session, account_key)
    if needs_rehash(user.password_hash, ph):
        # Parameters changed in the settings: upgrade the stored hash while we know the password.
        user.password_hash = await off_loop(hash_password, password, ph)
        session.add(user)
    if await mfa.has_totp(session, user.id):
        outcome = Outcome.SECOND_FACTOR
    elif Role(user.role) in policy.mfa_roles:
        outcome = Outcome.ENROL
    else:
        outcome = Outcome.SIGNED_IN
    await audit.record(
        session,
        context.acting_as(user.id, user.role),
        "auth.login",
        target_type="user",
        target_id=user.id,
        details={"next": outcome.value},
    )
    return Attempt(outcome, user=user)


async def second_factor_step(
    session: AsyncSession,
    keyring: Keyring,
    context: audit.AuditContext,
    policy: SignInPolicy,
    user: User,
    code: str,
    *,
    now: datetime | None = None,
) -> Attempt:
    """Check a TOTP or recovery code for a user whose password was accepted."""
    moment = now or datetime.now(UTC)
    key = ratelimit.key_for("mfa-account", str(user.id))
    context = context.acting_as(user.id, user.role)
    locked = await _locked(session, [key], moment)
    if locked is not None:
        await audit.record(
            session, context, "auth.mfa", outcome="locked", target_type="user", target_id=user.id
        )
        return Attempt(Outcome.LOCKED, user=user, retry_after=locked)
    method = await mfa.verify_code(session, keyring, user, code, now=moment)
    if method is None:
        _, locked_now = await ratelimit.fail(session, key, policy.account_limits, now=moment)
        await audit.record(
            session, context, "auth.mfa", outcome="failure", target_type="user", target_id=user.id
        )
        if locked_now is not None:
            await audit.record(
                session,
                context,
                "auth.lockout",
                target_type="user",
                target_id=user.id,
                details={"until": audit.timestamp(locked_now), "step": "mfa"},
            )
        return Attempt(
            Outcome.REFUSED,
            user=user,
            lockout=user if locked_now else None,
            retry_after=locked_now,
        )
    await ratelimit.succeed(session, key)
    await audit.record(
        session,
        context,
        "auth.mfa",
        target_type="user",
        target_id=user.id,
        details={"method": method},
    )
    return Attempt(Outcome.SIGNED_IN, user=user)


async def change_password(
    session: AsyncSession,
    ph: PasswordHasher,
    context: audit.AuditContext,
    user: User,
    *,
    current: str,
    new: str,
    keep_session: str | None,
) -> bool:
    """Change a password, given the current one; ends every other session of the user.

    Returns False when `current` is wrong. Raises WeakPasswordError for a weak `new`.
    """
    if user.password_hash is None or not await off_loop(
        verify_password, user.password_hash, current, ph
    ):
        await audit.record(
            session,
            context,
            "auth.password_changed",
            outcome="failure",
            target_type="user",
            target_id=user.id,
        )
        return False
    check_password_policy(new, email=user.email, display_name=user.display_name)
    user.password_hash = await off_loop(hash_password, new, ph)
    session.add(user)
    ended = await sessions.end_all(session, user.id, keep=keep_session)
    await audit.record(
        session,
        context,
        "auth.password_changed",
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended},
    )
    return True


async def request_reset(
    session: AsyncSession,
    context: audit.AuditContext,
    policy: SignInPolicy,
    *,
    email: str,
    valid_for: timedelta,
    now: datetime | None = None,
) -> tuple[User, str] | None:
    """Issue a reset link for an active account with this address; None otherwise.

    Requests count against the same per-address limit as failed sign-ins, and against a
    per-account limit, so the endpoint can be used neither to flood an inbox nor to probe.
    """
    moment = now or datetime.now(UTC)
    account_key = ratelimit.key_for("reset-account", _account_key(email))
    address_key = _address_key(context.ip)
    if await _locked(session, [account_key, address_key], moment) is not None:
        await audit.record(session, context, "auth.reset_requested", outcome="locked")
        return None
    # Every request counts: a reset request is never a "failure" the user can clear.
    await ratelimit.fail(session, account_key, policy.account_limits, now=moment)
    try:
        user = await accounts.find_user(session, email)
    except ValueError:
        user = None
    if user is None or not user.is_active or user.password_hash is None:
        await audit.record(session, context, "auth.reset_requested", outcome="unknown-account")
        return None
    secret = await email_links.issue(
        session, EmailLinkPurpose.PASSWORD_RESET, user, valid_for=valid_for, now=moment
    )
    await audit.record(
        session, context, "auth.reset_requested", target_type="user", target_id=user.id
    )
    return user, secret


async def complete_reset(
    session: AsyncSession,
    ph: PasswordHasher,
    context: audit.AuditContext,
    *,
    secret: str,
    password: str,
) -> User | None:
    """Set a new password through a reset link and end every session of the user.

    Returns None for a link that is unknown, used or expired. Raises WeakPasswordError
    (the link stays usable) for a weak password.
    """
    user = await email_links.set_password(
        session, EmailLinkPurpose.PASSWORD_RESET, secret, password, ph
    )
    if user is None:
        await audit.record(session, context, "auth.password_reset", outcome="invalid-link")
        return None
    ended = await sessions.end_all(session, user.id)
    # A reset proves control of the inbox, which is what a lockout waits for.
    await ratelimit.succeed(session, _account_key(user.email))
    await audit.record(
        session,
        context.acting_as(user.id, user.role),
        "auth.password_reset",
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended},
    )
    return user


async def link_locked(
    session: AsyncSession, context: audit.AuditContext, *, now: datetime | None = None
) -> bool:
    """Whether this address has tried too many dead invitation or reset links lately."""
    key = ratelimit.key_for("link-address", context.ip or "unknown")
    return await ratelimit.check(session, key, now=now or datetime.now(UTC)) is not None


async def link_failed(
    session: AsyncSession,
    context: audit.AuditContext,
    policy: SignInPolicy,
    *,
    now: datetime | None = None,
) -> None:
    """Count a dead link against the address. Links carry 256 random bits, so this is about
    noise and probing, not about guessing."""
    key = ratelimit.key_for("link-address", context.ip or "unknown")
    await ratelimit.fail(session, key, policy.address_limits, now=now or datetime.now(UTC))
