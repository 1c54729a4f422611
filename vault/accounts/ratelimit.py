"""Counting failures (of sign-in, second factor, reset requests) per key, with lockouts.

The state is a row per key in `rate_limits`, so every app process sees the same counts.
After `max_failures` failures within `window` a key is locked for `base_lockout`; each
further failure before the count is forgiven doubles the lockout, up to `max_lockout`
(NIST SP 800-63B §5.2.2: throttle, never lock for good, so a stranger cannot lock a user
out indefinitely). The count is forgiven once `window` has passed both since the first
failure and since the last lockout ended, or on success.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Insert, and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.accounts.identity import RateLimit
from vault.db import insert_missing

KEY_LENGTH = 128  # the width of rate_limits.key


@dataclass(frozen=True, slots=True)
class Limits:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    base_lockout: timedelta = timedelta(minutes=1)
    max_lockout: timedelta = timedelta(hours=1)


def key_for(kind: str, value: str) -> str:
    """The key for `value` (an address, an account) under `kind`, e.g. "login-account".

    The value is hashed, so the table holds no email or IP addresses.
    """
    if not kind or ":" in kind or len(kind) + 65 > KEY_LENGTH:
        raise ValueError(f"a rate-limit kind is 1..{KEY_LENGTH - 65} characters without ':'")
    normalised = unicodedata.normalize("NFKC", value).strip().casefold()
    # surrogatepass: a lone surrogate (from a JSON escape) must still give a key, not raise.
    digest = hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{digest}"


async def check(session: AsyncSession, key: str, *, now: datetime) -> datetime | None:
    """When the lock on `key` ends, if it is locked at `now`; else None."""
    locked_until: datetime | None = (
        await session.execute(select(RateLimit.locked_until).where(RateLimit.key == key))
    ).scalar_one_or_none()
    if locked_until is not None and locked_until > now:
        return locked_until
    return None


async def check_for_update(session: AsyncSession, key: str, *, now: datetime) -> datetime | None:
    """`check`, holding the key's row until the transaction ends: concurrent attempts on one
    key then conclude one after the other, each seeing the count the previous one left, so
    guesses sent all at once cannot pass a lock together (also on PostgreSQL)."""
    await session.execute(_insert_missing(session, key, now))
    locked_until: datetime | None = (
        await session.execute(
            select(RateLimit.locked_until)
            .where(RateLimit.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return locked_until if locked_until is not None and locked_until > now else None


def _lockout(limits: Limits, failures: int) -> timedelta:
    lockout = limits.base_lockout
    # Doubling step by step rather than base * 2**n: a huge count must not overflow timedelta.
    for _ in range(failures - limits.max_failures):
        if lockout >= limits.max_lockout:
            break
        lockout *= 2
    return min(lockout, limits.max_lockout)


def _insert_missing(session: AsyncSession, key: str, now: datetime) -> Insert:
    values = {
        "key": key,
        "failures": 0,
        "window_started_at": now,
        "locked_until": None,
        "updated_at": now,
    }
    return insert_missing(session, RateLimit, values)


async def fail(
    session: AsyncSession, key: str, limits: Limits, *, now: datetime
) -> tuple[int, datetime | None]:
    """Count one failure for `key`. Returns (failures counted, lock end) where the lock end
    is given only by the failure that reaches the threshold, so its owner is told once.

    Safe against concurrent callers in other processes: the row is created if missing
    without conflicting, then locked (FOR UPDATE on PostgreSQL; on SQLite the transaction
    already holds the database's write lock) before it is read and changed.
    """
    await session.execute(_insert_missing(session, key, now))
    row = (
        await session.execute(
            select(RateLimit)
            .where(RateLimit.key == key)
            .with_for_update()
            # The session may hold a copy read before the lock was taken; read it afresh.
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    forgiven_at = row.window_started_at + limits.window
    if row.locked_until is not None:
        forgiven_at = max(forgiven_at, row.locked_until + limits.window)
    if now >= forgiven_at:
        row.failures = 0
        row.window_started_at = now
        row.locked_until = None
    row.failures += 1
    row.updated_at = now
    crossed: datetime | None = None
    if row.failures >= limits.max_failures:
        until = now + _lockout(limits, row.failures)
        if row.locked_until is None or until > row.locked_until:
            row.locked_until = until
        if row.failures == limits.max_failures:
            crossed = row.locked_until
    session.add(row)
    await session.flush()
    return row.failures, crossed


async def succeed(session: AsyncSession, key: str) -> None:
    """Forget the failures of `key` (after a successful attempt)."""
    await session.execute(delete(RateLimit).where(col(RateLimit.key) == key))


async def purge(
    session: AsyncSession, *, now: datetime, older_than: timedelta = timedelta(days=1)
) -> int:
    """Delete rows that no longer count (for `gc`): no failure and no lock for `older_than`,
    which must exceed every `Limits.window` and `Limits.max_lockout` in use."""
    cutoff = now - older_than
    result = await session.execute(
        delete(RateLimit).where(
            and_(
                col(RateLimit.updated_at) < cutoff,
                or_(col(RateLimit.locked_until).is_(None), col(RateLimit.locked_until) < cutoff),
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
