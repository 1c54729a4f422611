"""SQLAlchemy's aiosqlite driver, with each statement run in one trip to the connection's
thread.

aiosqlite runs a SQLite connection in a thread of its own and hands it one call at a time;
SQLAlchemy's adapter makes four such calls per statement (a cursor, `execute`, `fetchall`,
`close`), each a queue put, a thread wake-up and a wake-up of the event loop. Measured on a
2-core machine, those trips cost 0.3-0.4 ms of CPU per statement, a fifth to a third of a
small download's request work on SQLite (docs/downloads.md). Here the cursor is made, run,
read and closed in one call on that thread; what SQLAlchemy sees is the stock adapter's
cursor, with its rows already fetched. Server-side cursors (`stream_results`) stay the stock
ones.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

__all__ = ["dbapi"]

_Ran = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Ran:
    # On the connection's own thread: the whole statement, rows and all.
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor holding the outcome of its last statement."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        super().__init__(adapt_connection)
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    # No aiosqlite cursor: the statement makes its own on the connection's thread.
    def _make_new_cursor(self, connection: Any) -> Any:
        return None

    def _aenter_cursor(self, cursor: Any) -> Any:
        return None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        return  # nothing is left open on the connection's thread

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._statement(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._statement(operation, seq_of_parameters, many=True)

    async def _statement(self, operation: Any, parameters: Any, *, many: bool) -> None:
        # aiosqlite's own call onto its thread (`Connection._execute`), as its cursors make.
        connection: Any = self._connection
        async with self._adapt_connection._execute_mutex:
            ran: _Ran = await connection._execute(
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = ran
        self._rows = collections.deque(rows)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = _Cursor


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return _Connection(self, stock._connection)


def dbapi() -> _DBAPI:
    """The DBAPI module for `create_async_engine(..., module=dbapi())` on `sqlite+aiosqlite`."""
    return _DBAPI(aiosqlite, sqlite3)
