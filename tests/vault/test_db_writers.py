"""Reads that record nothing take no write lock (`vault.db.reading`), and the writers of one
process queue for SQLite's write lock in the process (vault.db), instead
of each polling the lock through SQLite's busy handler, which sleeps 1, 2, 5, 10, … ms
between tries and lets in whoever tries at the right moment, so that some writers wait far
longer than others (`bench/db_writers.py`)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from vault import thumbnail_jobs
from vault.db import create_engine, reading, session_factory, transaction
from web.services import Services
from web.settings import Settings

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a SQLite file whose connections give up at once on a locked database, so
    that any writer that reaches SQLite's lock while another holds it fails instead of
    waiting: only the process's own queue can keep them apart."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def _no_patience(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE marks (n INTEGER PRIMARY KEY)"))
    yield engine
    await engine.dispose()


async def write_slowly(engine: AsyncEngine, n: int) -> None:
    async with transaction(session_factory(engine)) as session:
        await session.execute(text("INSERT INTO marks (n) VALUES (:n)"), {"n": n})
        await asyncio.sleep(0.002)  # the lock is held across an await, as a route holds it


async def marks(engine: AsyncEngine) -> list[int]:
    async with transaction(session_factory(engine)) as session:
        return list((await session.execute(text("SELECT n FROM marks ORDER BY n"))).scalars())


async def test_writers_of_one_process_take_turns_without_sqlite_s_busy_handler(
    impatient: AsyncEngine,
) -> None:
    await asyncio.gather(*(write_slowly(impatient, n) for n in range(12)))
    assert await marks(impatient) == list(range(12))


async def test_the_queue_passes_on_after_a_rollback_and_a_failed_begin(
    impatient: AsyncEngine, tmp_path: Path
) -> None:
    async def fail() -> None:
        async with transaction(session_factory(impatient)) as session:
            await session.execute(text("INSERT INTO marks (n) VALUES (1)"))
            raise RuntimeError("the route failed")

    with pytest.raises(RuntimeError):
        await fail()

    # Another process holds SQLite's lock: this process's writer fails at BEGIN (no patience)
    # and must not keep its place in the queue.
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")
    try:
        async with transaction(session_factory(other)) as holder:
            await holder.execute(text("SELECT 1"))  # a session begins at its first statement
            with pytest.raises(OperationalError, match="locked"):
                await write_slowly(impatient, 2)
    finally:
        await other.dispose()

    started = time.monotonic()
    await asyncio.wait_for(write_slowly(impatient, 3), timeout=5)
    assert time.monotonic() - started < 2
    assert await marks(impatient) == [3]


async def test_a_reading_session_takes_no_write_lock(
    impatient: AsyncEngine, tmp_path: Path
) -> None:
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")
    try:
        async with transaction(session_factory(other)) as holder:
            await holder.execute(text("INSERT INTO marks (n) VALUES (7)"))  # not yet committed
            async with reading(session_factory(impatient)) as session:
                seen = list((await session.execute(text("SELECT n FROM marks"))).scalars())
            assert seen == []  # the last commit, read without waiting
            with pytest.raises(OperationalError, match="locked"):
                async with session_factory(impatient)() as session:  # a plain session writes
                    await session.execute(text("SELECT n FROM marks"))
    finally:
        await other.dispose()


async def test_an_idle_background_poll_waits_for_no_writer(
    services: Services, settings: Settings
) -> None:
    """The thumbnail worker asks every two seconds whether anything is due; on SQLite that
    question took the database's write lock, so it waited for every writer and held up the
    next."""
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("the write lock in question is SQLite's")
    # Once first, so that the file is in WAL mode (the app's connections set it as they open).
    assert await thumbnail_jobs.anything_due(services.sessions, T0) is False
    holder = sqlite3.connect(str(url.database), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for as long as it takes
        due = await asyncio.wait_for(thumbnail_jobs.anything_due(services.sessions, T0), 5)
        assert due is False
    finally:
        holder.execute("ROLLBACK")
        holder.close()
