"""The SQLite engine runs each statement in one trip to aiosqlite's thread
(`vault.sqlite_driver`), and still behaves as a DBAPI cursor in every way SQLAlchemy uses one:
rows, row counts, many-row inserts, fetching in batches, errors, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vault.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


async def test_a_statement_is_one_trip_to_the_connections_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[object] = []
    original: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        trips.append(fn)
        return await original(self, fn, *args)

    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        rows = (await connection.execute(text("SELECT name FROM t ORDER BY id"))).all()
        updated = await connection.execute(text("UPDATE t SET name = name || '!'"))
        monkeypatch.undo()
    assert [row.name for row in rows] == ["a", "b"]
    assert updated.rowcount == 2
    # The stock adapter took seven for these two: a cursor, execute, fetchall (the SELECT's
    # rows) and close, each a trip of its own.
    assert len(trips) == 2


async def test_the_cursor_behaves_as_sqlalchemy_expects(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (name) VALUES ('first')"))
        assert inserted.lastrowid == 1
        many = await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(5)]
        )
        assert many.rowcount == 5
        result = await connection.execute(text("SELECT id FROM t ORDER BY id"))
        assert [len(batch) for batch in result.partitions(2)] == [2, 2, 2]
        empty = await connection.execute(text("DELETE FROM t WHERE name = 'none'"))
        assert empty.rowcount == 0 and not empty.returns_rows

    # A failed statement raises SQLAlchemy's error, and the connection goes on working.
    async with engine.connect() as connection:
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            await connection.execute(text("INSERT INTO t (name) VALUES ('first')"))
        await connection.rollback()
        count = (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 6

    # Streaming keeps the stock server-side cursor.
    async with engine.connect() as connection:
        streamed = await connection.stream(text("SELECT name FROM t ORDER BY id"))
        assert [row.name async for row in streamed] == ["first", *(f"n{i}" for i in range(5))]
