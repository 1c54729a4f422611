"""Unlocking a protected link: its password, or a one-time code emailed to its recipient.

A visitor who passes either gets a grant: a random secret in a short-lived cookie, of which
only the SHA-256 is stored, bound to that one link (a grant of one link opens no other).
Guesses of passwords and codes count against the link and against the visitor's address
(`vault.accounts.ratelimit`), so neither one link nor one address can be guessed at quickly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from sqlalchemy import Column, Integer, String, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select

from vault import audit, link_policy, links
from vault.accounts import ratelimit
from vault.accounts.passwords import off_loop, verify_password
from vault.accounts.ratelimit import Limits
from vault.audit.actions import AuditAction
from vault.db import transaction
from vault.links import Link, aware
from vault.models import utcnow


class LinkGrant(SQLModel, table=True):
    """A visitor's browser that unlocked one link (password or code) until `expires_at`."""

    __tablename__ = "link_grants"
    # SHA-256 of the cookie value: a database reader cannot replay grants.
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    link_id: uuid.UUID = Field(foreign_key="links.id", index=True)
    via: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class LinkCode(SQLModel, table=True):
    """A one-time code sent to a link's recipient; only its keyed hash is stored."""

    __tablename__ = "link_codes"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    link_id: uuid.UUID = Field(foreign_key="links.id", index=True)
    code_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    used_at: datetime | None = None


class KeyDeriver(Protocol):
    """What the codes need of the keyring (`vault.crypto.keyring.Keyring` is one)."""

    def derive(self, purpose: bytes, kek_id: str | None = None) -> tuple[str, bytes]: ...


CODE_PURPOSE = b"clientvault/link-code/v1"
GRANT_BYTES = 32
CODE_DIGITS = 8
# Wrong entries after which a code is dead, whatever the lockouts allow: 10**8 codes and
# 5 tries each leave a guesser one chance in 20 million per code sent.
CODE_ATTEMPTS = 5
PASSWORD = "password"  # noqa: S105 (the name of a requirement, not a secret)
CODE = "code"
# Codes sent per link within a window: a stranger holding the link cannot flood the
# recipient's inbox.
SEND_LIMITS = Limits(
    max_failures=5, window=timedelta(minutes=15), base_lockout=timedelta(minutes=15)
)


@dataclass(frozen=True, slots=True)
class GuessLimits:
    """Wrong passwords and codes allowed per link and per visitor address."""

    link: Limits
    address: Limits


@dataclass(frozen=True, slots=True)
class Unlock:
    """The outcome of a password or code: a grant secret for the cookie when it passed."""

    secret: str | None = None
    locked_until: datetime | None = None
    grant_expires_at: datetime | None = None


def requirements(link: Link) -> frozenset[str]:
    """What a visitor must give before anything of the link is shown."""
    needed = set()
    if link.password_hash is not None:
        needed.add(PASSWORD)
    if link.recipient_email is not None:
        needed.add(CODE)
    return frozenset(needed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _code_digest(keyring: KeyDeriver, link_id: uuid.UUID, code: str) -> str:
    # Keyed: an 8-digit code has too few values for a plain hash to hide it from anyone who
    # reads the table. The key is derived from the keyring's active KEK; a code sent before
    # a key rotation stops matching (the visitor asks for another).
    _, key = keyring.derive(CODE_PURPOSE)
    message = f"{link_id}:{code}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def _grant(
    session: AsyncSession, link: Link, secret: str | None, now: datetime
) -> LinkGrant | None:
    if not secret or len(secret) > 128:
        return None
    grant = await session.get(LinkGrant, _digest(secret))
    # A grant opens the one link it was made for: another link's cookie is no key here.
    if grant is None or grant.link_id != link.id or aware(grant.expires_at) <= now:
        return None
    return grant


async def missing(
    session: AsyncSession, link: Link, secret: str | None, *, now: datetime | None = None
) -> frozenset[str]:
    """What the visitor holding grant `secret` (from their cookie) has yet to give."""
    needed = requirements(link)
    if not needed:
        return needed
    grant = await _grant(session, link, secret, now or datetime.now(UTC))
    have = frozenset() if grant is None else frozenset(grant.via.split("+"))
    return needed - have


def _guess_keys(link: Link, address: str | None) -> list[str]:
    return [
        ratelimit.key_for("link-guess", str(link.id)),
        ratelimit.key_for("link-guess-address", address or "unknown"),
    ]


async def _locked(session: AsyncSession, keys: list[str], now: datetime) -> datetime | None:
    ends = [
        until for key in keys if (until := await ratelimit.check_for_update(session, key, now=now))
    ]
    return max(ends) if ends else None


async def _fail(
    session: AsyncSession, keys: list[str], limits: GuessLimits, now: datetime
) -> datetime | None:
    ends = []
    for key, kind in zip(keys, (limits.link, limits.address), strict=True):
        await ratelimit.fail(session, key, kind, now=now)
        until = await ratelimit.check(session, key, now=now)
        if until is not None:
            ends.append(until)
    return max(ends) if ends else None


async def _pass(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    via: str,
    secret: str | None,
    ttl: timedelta,
    now: datetime,
) -> Unlock:
    old = await _grant(session, link, secret, now)
    have = {via} | (set(old.via.split("+")) if old is not None else set())
    if old is not None:
        await session.delete(old)
    # Tidy as we go: the link's lapsed grants are of no use to anyone.
    await session.execute(
        delete(LinkGrant).where(col(LinkGrant.link_id) == link.id, col(LinkGrant.expires_at) <= now)
    )
    fresh = secrets.token_urlsafe(GRANT_BYTES)
    expires_at = now + ttl
    session.add(
        LinkGrant(
            id=_digest(fresh),
            link_id=link.id,
            via="+".join(sorted(have)),
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    await links.record(session, context, AuditAction.LINK_UNLOCKED, link, via=via)
    return Unlock(secret=fresh, grant_expires_at=expires_at)


async def unlock_with_password(
    sessions: async_sessionmaker[AsyncSession],
    context: audit.AuditContext,
    *,
    token: str,
    password: str,
    secret: str | None,
    defaults: link_policy.LinkDefaults,
    hasher: PasswordHasher,
    limits: GuessLimits,
    ttl: timedelta,
) -> Unlock:
    """Check a visitor's password for the link `token` opens; every attempt is audited.

    Argon2 runs between two short transactions, never while the database's write lock or
    the rate limit's row is held. Raises `LinkNotFoundError` for a link that is not usable.
    """
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        link = await links.resolve(session, token, defaults=defaults, now=now)
        keys = _guess_keys(link, context.ip)
        locked = await _locked(session, keys, now)
        if locked is not None or link.password_hash is None:
            await links.record(
                session,
                context,
                AuditAction.LINK_UNLOCK_FAILED,
                link,
                outcome="locked",
                reason="locked",
            )
            return Unlock(locked_until=locked)
        stored = link.password_hash
    ok = await off_loop(verify_password, stored, password, hasher)
    async with transaction(sessions) as session:
        link = await links.resolve(session, token, defaults=defaults, now=now)
        if ok:
            for key in keys:
                await ratelimit.succeed(session, key)
            return await _pass(
                session, context, link, via=PASSWORD, secret=secret, ttl=ttl, now=now
            )
        locked = await _fail(session, keys, limits, now)
        await links.record(
            session,
            context,
            AuditAction.LINK_UNLOCK_FAILED,
            link,
            outcome="failure",
            reason="wrong_password",
        )
        return Unlock(locked_until=locked)


async def send_code(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    keyring: KeyDeriver,
    valid_for: timedelta,
    now: datetime | None = None,
) -> str | None:
    """A new one-time code for the link's recipient (to email at once), or None when too
    many were sent lately. Only the code's keyed hash (HMAC-SHA256) is kept."""
    now = now or datetime.now(UTC)
    if link.recipient_email is None:
        return None
    key = ratelimit.key_for("link-code-sent", str(link.id))
    if await ratelimit.check_for_update(session, key, now=now) is not None:
        await links.record(
            session,
            context,
            AuditAction.LINK_CODE_REFUSED,
            link,
            outcome="locked",
            reason="too_many_codes",
        )
        return None
    await ratelimit.fail(session, key, SEND_LIMITS, now=now)
    await session.execute(
        delete(LinkCode).where(
            col(LinkCode.link_id) == link.id,
            or_(col(LinkCode.used_at).is_not(None), col(LinkCode.expires_at) <= now),
        )
    )
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    session.add(
        LinkCode(
            link_id=link.id,
            code_hash=_code_digest(keyring, link.id, code),
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    await session.flush()
    await links.record(
        session, context, AuditAction.LINK_CODE_SENT, link, recipient=link.recipient_email
    )
    return code


async def unlock_with_code(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    code: str,
    keyring: KeyDeriver,
    secret: str | None,
    limits: GuessLimits,
    ttl: timedelta,
    now: datetime | None = None,
) -> Unlock:
    """Check a one-time code sent to the link's recipient; every attempt is audited."""
    now = now or datetime.now(UTC)
    keys = _guess_keys(link, context.ip)
    locked = await _locked(session, keys, now)
    if locked is not None:
        await links.record(
            session,
            context,
            AuditAction.LINK_UNLOCK_FAILED,
            link,
            outcome="locked",
            reason="locked",
        )
        return Unlock(locked_until=locked)
    typed = "".join(code.split())
    candidates = (
        (
            await session.execute(
                select(LinkCode).where(LinkCode.link_id == link.id, col(LinkCode.used_at).is_(None))
            )
        )
        .scalars()
        .all()
    )
    wanted = _code_digest(keyring, link.id, typed)
    for candidate in candidates:
        usable = aware(candidate.expires_at) > now and candidate.attempts < CODE_ATTEMPTS
        if usable and hmac.compare_digest(candidate.code_hash, wanted):
            candidate.used_at = now
            session.add(candidate)
            for key in keys:
                await ratelimit.succeed(session, key)
            return await _pass(session, context, link, via=CODE, secret=secret, ttl=ttl, now=now)
    for candidate in candidates:
        candidate.attempts += 1
        session.add(candidate)
    locked = await _fail(session, keys, limits, now)
    await links.record(
        session,
        context,
        AuditAction.LINK_UNLOCK_FAILED,
        link,
        outcome="failure",
        reason="wrong_code",
    )
    return Unlock(locked_until=locked)
