"""The writers of one process queue for SQLite's write lock in the process (vault.db), instead
of each polling the lock through SQLite's busy handler, which sleeps 1, 2, 5, 10, … ms
between tries and lets in whoever tries at the right moment, so that some writers wait far
longer than others (`bench/db_writers.py`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from vault.db import create_engine, session_factory, transaction


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
