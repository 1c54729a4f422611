"""Signing in: the password step, the second factor and password resets.

Every attempt is an audit event. Failures are counted per account and per address in the
database (`vault.accounts.ratelimit`), so the limits hold across app processes. An unknown address
goes through the same steps as a known one (a dummy Argon2 verification included), so
neither the answer nor its timing tells whether an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vault import audit
from vault.accounts import email_links, mfa, ratelimit, sessions
from vault.accounts import users as accounts
from vault.accounts.identity import EmailLinkPurpose, SessionStage
from vault.accounts.passwords import (
    dummy_verify,
    hash_password,
    needs_rehash,
    off_loop,
    verify_password,
)
from vault.audit.actions import AuditAction
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import InvalidEmailError
from vault.models import Role, User


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


def account_key(email: str) -> str:
    """The rate-limit key of the account an email address names (whether it exists or not)."""
    try:
        email = accounts.normalise_email(email)
    except InvalidEmailError:
        email = email.strip()
    return ratelimit.key_for("login-account", email.lower())


def _address_key(ip: str | None) -> str:
    return ratelimit.key_for("login-address", ip or "unknown")


async def _locked(session: AsyncSession, keys: list[str], now: datetime) -> datetime | None:
    until = [u for k in keys if (u := await ratelimit.check(session, k, now=now)) is not None]
    return max(until) if until else None


def _tried(user: User | None) -> dict[str, str]:
    # The email field of a refused sign-in may hold a password typed in the wrong box
    # (issue 13 item 17): the log keeps the address only when it is an account's own.
    return {"email": user.email} if user is not None else {}


async def sign_in(
    sessions_: async_sessionmaker[AsyncSession],
    ph: PasswordHasher,
    context: audit.AuditContext,
    policy: SignInPolicy,
    session_policy: sessions.SessionPolicy,
    *,
    email: str,
    password: str,
    replaces: str | None = None,
    now: datetime | None = None,
) -> tuple[Attempt, sessions.Started | None]:
    """The password step: check an email and password and, when right, start a browser
    session at the next stage (ending the session `replaces`, the cookie the browser came
    with, so an id planted beforehand is worth nothing: session fixation).

    Argon2 runs between two short transactions, never inside one: on SQLite a transaction
    holds the database-wide write lock, and one user's sign-ins would stall everyone else
    (issue 13 item 5). Failure counts and audit events are committed whatever the outcome.
    """
    moment = now or datetime.now(UTC)
    account, address = account_key(email), _address_key(context.ip)
    async with transaction(sessions_) as session:
        locked = await _locked(session, [account, address], moment)
        try:
            user = await accounts.find_user(session, email)
        except InvalidEmailError:
            user = None
        if locked is not None:
            await audit.record(
                session, context, AuditAction.AUTH_LOGIN, outcome="locked", details=_tried(user)
            )
            return Attempt(Outcome.LOCKED, retry_after=locked), None
    stored = None if user is None or not user.is_active else user.password_hash
    # The same single Argon2 run whether or not the account exists (item 1).
    if stored is None:
        await off_loop(dummy_verify, password, ph)
        ok = False
    else:
        ok = await off_loop(verify_password, stored, password, ph)
    # Parameters changed in the settings: upgrade the stored hash while we know the password.
    rehashed = (
        await off_loop(hash_password, password, ph)
        if ok and stored and needs_rehash(stored, ph)
        else None
    )
    async with transaction(sessions_) as session:
        # Checked again now that the hash is done: guesses sent all at once passed the first
        # check together, and only those concluded before the lock may count or succeed.
        later = datetime.now(UTC)
        locked = await ratelimit.check_for_update(session, account, now=later)
        locked = max(filter(None, [locked, await _locked(session, [address], later)]), default=None)
        if locked is not None:
            await audit.record(
                session, context, AuditAction.AUTH_LOGIN, outcome="locked", details=_tried(user)
            )
            return Attempt(Outcome.LOCKED, retry_after=locked), None
        if not ok or user is None:
            return await _refused(session, context, policy, user, account, address, moment), None
        current = await session.get(User, user.id, populate_existing=True)
        if current is None or not current.is_active or current.password_hash != stored:
            # Disabled, or its password changed while this one was being checked.
            return Attempt(Outcome.REFUSED), None
        user = current
        await ratelimit.succeed(session, account)
        if rehashed is not None:
            user.password_hash = rehashed
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
            AuditAction.AUTH_LOGIN,
            target_type="user",
            target_id=user.id,
            details={"next": outcome.value},
        )
        attempt = Attempt(outcome, user=user)
        if replaces:
            found = await sessions.lookup(session, replaces, policy=session_policy)
            if found is not None:
                await sessions.end(session, found[0])
        started = await sessions.start(
            session,
            user,
            attempt.stage,
            policy=session_policy,
            ip=context.ip,
            user_agent=context.user_agent,
        )
    return attempt, started


async def _refused(
    session: AsyncSession,
    context: audit.AuditContext,
    policy: SignInPolicy,
    user: User | None,
    account: str,
    address: str,
    moment: datetime,
) -> Attempt:
    _, account_locked = await ratelimit.fail(session, account, policy.account_limits, now=moment)
    _, address_locked = await ratelimit.fail(session, address, policy.address_limits, now=moment)
    await audit.record(
        session,
        context,
        AuditAction.AUTH_LOGIN,
        outcome="failure",
        target_type="user" if user else None,
        target_id=user.id if user else None,
        details=_tried(user),
    )
    if address_locked is not None:
        # Everyone behind this address is locked out of signing in: the lock is audited like
        # an account's, with the address of the attempts (the event's `ip`).
        await audit.record(
            session,
            context,
            AuditAction.AUTH_LOCKOUT,
            details={"until": audit.timestamp(address_locked), "scope": "address"},
        )
    lockout = None
    if account_locked is not None and user is not None:
        await audit.record(
            session,
            context,
            AuditAction.AUTH_LOCKOUT,
            target_type="user",
            target_id=user.id,
            details={"until": audit.timestamp(account_locked)},
        )
        lockout = user
    return Attempt(
        Outcome.REFUSED, lockout=lockout, retry_after=account_locked if lockout else None
    )


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
            session,
            context,
            AuditAction.AUTH_MFA,
            outcome="locked",
            target_type="user",
            target_id=user.id,
        )
        return Attempt(Outcome.LOCKED, user=user, retry_after=locked)
    method = await mfa.verify_code(session, keyring, user, code, now=moment)
    if method is None:
        _, locked_now = await ratelimit.fail(session, key, policy.account_limits, now=moment)
        await audit.record(
            session,
            context,
            AuditAction.AUTH_MFA,
            outcome="failure",
            target_type="user",
            target_id=user.id,
        )
        if locked_now is not None:
            await audit.record(
                session,
                context,
                AuditAction.AUTH_LOCKOUT,
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
        AuditAction.AUTH_MFA,
        target_type="user",
        target_id=user.id,
        details={"method": method},
    )
    return Attempt(Outcome.SIGNED_IN, user=user)


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
    reset_key = ratelimit.key_for("reset-account", account_key(email))
    address_key = _address_key(context.ip)
    if await _locked(session, [reset_key, address_key], moment) is not None:
        await audit.record(session, context, AuditAction.AUTH_RESET_REQUESTED, outcome="locked")
        return None
    # Every request counts: a reset request is never a "failure" the user can clear.
    await ratelimit.fail(session, reset_key, policy.account_limits, now=moment)
    try:
        user = await accounts.find_user(session, email)
    except InvalidEmailError:
        user = None
    if user is None or not user.is_active or user.password_hash is None:
        await audit.record(
            session, context, AuditAction.AUTH_RESET_REQUESTED, outcome="unknown-account"
        )
        return None
    secret = await email_links.issue(
        session, EmailLinkPurpose.PASSWORD_RESET, user, valid_for=valid_for, now=moment
    )
    await audit.record(
        session, context, AuditAction.AUTH_RESET_REQUESTED, target_type="user", target_id=user.id
    )
    return user, secret


async def complete_reset(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    secret: str,
    password: str,
    password_hash: str,
) -> User | None:
    """Set a new password (`password_hash`, made by the caller outside any transaction from
    `password`) through a reset link; end every session of the user and revoke their tokens.

    Returns None for a link that is unknown, used or expired. Raises WeakPasswordError
    (the link stays usable) for a weak password.
    """
    user = await email_links.set_password(
        session, EmailLinkPurpose.PASSWORD_RESET, secret, password, password_hash
    )
    if user is None:
        await audit.record(
            session, context, AuditAction.AUTH_PASSWORD_RESET, outcome="invalid-link"
        )
        return None
    ended = await sessions.end_all(session, user.id)
    # A reset proves control of the inbox, which is what a lockout waits for.
    await ratelimit.succeed(session, account_key(user.email))
    await audit.record(
        session,
        context.acting_as(user.id, user.role),
        AuditAction.AUTH_PASSWORD_RESET,
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended.sessions, "tokens_revoked": ended.tokens},
    )
    return user


async def link_locked(
    session: AsyncSession, context: audit.AuditContext, *, now: datetime | None = None
) -> bool:
    """Whether this address has tried too many dead invitation or reset links lately."""
    key = ratelimit.key_for("link-address", context.ip or "unknown")
    if await ratelimit.check(session, key, now=now or datetime.now(UTC)) is None:
        return False
    await audit.record(
        session,
        context,
        AuditAction.AUTH_LINK_REFUSED,
        outcome="denied",
        details={"reason": "locked"},
    )
    return True


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
    # Never the link itself: it is a secret, and a mistyped one may be one letter off.
    await audit.record(
        session,
        context,
        AuditAction.AUTH_LINK_REFUSED,
        outcome="denied",
        details={"reason": "dead_link"},
    )
