"""Failure counting and lockouts in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from vault.accounts import ratelimit
from vault.accounts.identity import RateLimit
from vault.accounts.ratelimit import Limits
from vault.db import create_engine, session_factory, transaction

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = Limits(
    max_failures=3,
    window=timedelta(minutes=10),
    base_lockout=timedelta(minutes=1),
    max_lockout=timedelta(minutes=4),
)
KEY = ratelimit.key_for("login-account", "alice@example.com")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def fail(
    sessions: Sessions, at: datetime, key: str = KEY, limits: Limits = LIMITS
) -> tuple[int, datetime | None]:
    async with transaction(sessions) as session:
        return await ratelimit.fail(session, key, limits, now=at)


async def locked_until(sessions: Sessions, at: datetime, key: str = KEY) -> datetime | None:
    async with transaction(sessions) as session:
        return await ratelimit.check(session, key, now=at)


def after(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def test_keys_hold_no_address_and_fit_the_column() -> None:
    key = ratelimit.key_for("login-account", "Alice@Example.com")
    assert key.startswith("login-account:") and len(key) <= 128
    assert "alice" not in key.lower() and "example" not in key.lower()
    assert key == ratelimit.key_for("login-account", " alice@example.com ")
    assert key != ratelimit.key_for("login-address", "alice@example.com")
    assert key != ratelimit.key_for("login-account", "bob@example.com")
    with pytest.raises(ValueError, match="kind"):
        ratelimit.key_for("a:b", "x")
    with pytest.raises(ValueError, match="kind"):
        ratelimit.key_for("k" * 64, "x")


async def test_locks_exactly_at_the_threshold(sessions: Sessions) -> None:
    assert await locked_until(sessions, T0) is None
    assert await fail(sessions, T0) == (1, None)
    assert await fail(sessions, after(seconds=1)) == (2, None)
    assert await locked_until(sessions, after(seconds=2)) is None
    failures, until = await fail(sessions, after(seconds=2))
    assert (failures, until) == (3, after(seconds=2, minutes=1))
    assert await locked_until(sessions, after(seconds=3)) == until
    assert await locked_until(sessions, after(seconds=61)) == until
    assert await locked_until(sessions, after(seconds=62)) is None  # the lock has ended


async def test_backoff_doubles_and_caps_and_reports_the_lock_once(sessions: Sessions) -> None:
    for i in range(3):
        await fail(sessions, after(seconds=i))
    moment = after(minutes=2)  # the first lockout (1 min) is over; the count is not forgiven
    expected = [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=4)]
    for n, lockout in enumerate(expected, start=4):
        failures, reported = await fail(sessions, moment)
        assert (failures, reported) == (n, None)  # only the threshold crossing reports
        assert await locked_until(sessions, moment) == moment + lockout
        moment += lockout + timedelta(seconds=1)


async def test_a_failure_during_a_lock_extends_it(sessions: Sessions) -> None:
    for i in range(3):
        await fail(sessions, after(seconds=i))
    assert await fail(sessions, after(seconds=30)) == (4, None)
    assert await locked_until(sessions, after(seconds=31)) == after(seconds=30, minutes=2)


async def test_the_count_expires_with_the_window(sessions: Sessions) -> None:
    await fail(sessions, T0)
    await fail(sessions, after(minutes=9))
    assert await fail(sessions, after(minutes=10)) == (1, None)  # window from T0 is over
    assert await fail(sessions, after(minutes=11)) == (2, None)


async def test_after_a_lock_the_window_counts_from_its_end(sessions: Sessions) -> None:
    for i in range(3):
        await fail(sessions, after(seconds=i))  # locked until T0 + 1 min 2 s
    lock_end = after(minutes=1, seconds=2)
    assert await fail(sessions, lock_end + timedelta(minutes=9)) == (4, None)
    later = lock_end + timedelta(minutes=9) + timedelta(minutes=2) + timedelta(minutes=10)
    assert await fail(sessions, later) == (1, None)
    assert await locked_until(sessions, later) is None


async def test_success_clears_the_key(sessions: Sessions) -> None:
    for i in range(3):
        await fail(sessions, after(seconds=i))
    assert await locked_until(sessions, after(seconds=5)) is not None
    async with transaction(sessions) as session:
        await ratelimit.succeed(session, KEY)
    assert await locked_until(sessions, after(seconds=5)) is None
    assert await fail(sessions, after(seconds=6)) == (1, None)


async def test_keys_are_independent(sessions: Sessions) -> None:
    other = ratelimit.key_for("login-account", "bob@example.com")
    for i in range(3):
        await fail(sessions, after(seconds=i))
    assert await locked_until(sessions, after(seconds=5), other) is None
    assert await fail(sessions, after(seconds=5), other) == (1, None)


async def test_two_first_failures_racing_are_both_counted(sessions: Sessions) -> None:
    # A holds the freshly inserted row in an open transaction while B tries to count its
    # own failure: B must wait, then count on top of A (no lost update, no duplicate key).
    async with sessions() as a, sessions() as b:
        await a.begin()
        await b.begin()
        assert await ratelimit.fail(a, KEY, LIMITS, now=T0) == (1, None)
        racing = asyncio.create_task(ratelimit.fail(b, KEY, LIMITS, now=T0))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await a.commit()
        assert await asyncio.wait_for(racing, 10) == (2, None)
        await b.commit()
    async with transaction(sessions) as session:
        row = (await session.execute(select(RateLimit).where(RateLimit.key == KEY))).scalar_one()
    assert row.failures == 2


async def test_many_concurrent_failures_are_all_counted_and_lock_once(sessions: Sessions) -> None:
    key = ratelimit.key_for("login-address", "192.0.2.7")
    results = await asyncio.gather(*(fail(sessions, T0, key) for _ in range(6)))
    assert sorted(n for n, _ in results) == [1, 2, 3, 4, 5, 6]
    assert [until for _, until in results if until is not None] == [after(minutes=1)]


async def test_purge_removes_only_rows_long_over(sessions: Sessions) -> None:
    old = ratelimit.key_for("login-account", "old@example.com")
    locked = ratelimit.key_for("login-account", "locked@example.com")
    await fail(sessions, T0, old)
    heavy = Limits(max_failures=1, base_lockout=timedelta(days=2), max_lockout=timedelta(days=2))
    await fail(sessions, T0, locked, heavy)
    await fail(sessions, after(hours=30))  # recent
    async with transaction(sessions) as session:
        assert await ratelimit.purge(session, now=after(hours=31)) == 1
    async with transaction(sessions) as session:
        keys = set((await session.execute(select(RateLimit.key))).scalars().all())
    assert keys == {locked, KEY}
