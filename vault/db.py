"""Database engines, sessions and the migration gate, for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Insert, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from vault.errors import NotMigratedError, VaultError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str, *, pool_size: int = 10, wait_seconds: float = 10.0) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, foreign keys and serialised writers.

    On PostgreSQL, connecting and waiting for a pooled connection each give up after
    `wait_seconds`, so an unreachable server turns into a quick 503, not a hung request.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private(Path(parsed.database))
        module = None
        if parsed.get_driver_name() == "aiosqlite":
            # Imported here, as SQLAlchemy imports a dialect: PostgreSQL needs no aiosqlite.
            from vault import sqlite_driver

            module = sqlite_driver.dbapi()
        engine = create_async_engine(
            url,
            module=module,
            connect_args={"timeout": _BUSY_SECONDS, "factory": _queued_writers()},
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A connection the server dropped (restart, failover) is replaced on checkout.
        pool_pre_ping=True,
        pool_timeout=wait_seconds,
        connect_args={"timeout": wait_seconds},
    )


def _create_private(database: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644 under the usual
    umask). SQLite gives the -wal and -shm files the mode of the database file, so all three
    stay private to the service account (review item 10)."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


_BUSY_SECONDS = 30


def _queued_writers() -> type[sqlite3.Connection]:
    """A connection class whose writers queue for SQLite's write lock on one lock of their
    own, shared by the connections of one engine (so of one process).

    Every transaction takes SQLite's write lock as it begins (`BEGIN IMMEDIATE`, below). A
    writer that finds it taken is left to SQLite's busy handler, which sleeps 1, 2, 5, 10,
    15, 20, 25… ms between tries and lets in whoever tries at the right moment: under load
    some writers wait far longer than others, and sleep on after the lock is free. Queued
    here, the next writer wakes as the one before it commits or rolls back. Twenty writers at
    once (`python -m bench.db_writers`) commit at the same rate either way, but the slowest
    transaction takes about a tenth as long. SQLite's lock stays the arbiter: between
    processes, and for a writer the queue let through after the busy timeout, SQLite decides.
    """
    gate = threading.Lock()

    class QueuedCursor(sqlite3.Cursor):
        connection: QueuedConnection

        def execute(self, sql: str, parameters: Any = (), /) -> QueuedCursor:
            if sql != "BEGIN IMMEDIATE":
                return super().execute(sql, parameters)
            self.connection.join_queue()
            try:
                return super().execute(sql, parameters)
            except BaseException:
                self.connection.leave_queue()
                raise

    class QueuedConnection(sqlite3.Connection):
        # Runs on the connection's own thread (aiosqlite's), never on the event loop.
        holds_gate = False

        def cursor(self, factory: Any = QueuedCursor) -> Any:
            return super().cursor(factory)

        def join_queue(self) -> None:
            self.holds_gate = gate.acquire(timeout=_BUSY_SECONDS)

        def leave_queue(self) -> None:
            if self.holds_gate:
                self.holds_gate = False
                gate.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.leave_queue()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.leave_queue()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.leave_queue()

    return QueuedConnection


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READS_ONLY):
            conn.exec_driver_sql("BEGIN")  # deferred: see `reading`
            return
        # Every other transaction here writes (each read is audited), so take the write lock
        # up front: a deferred transaction that upgrades to a writer can fail with
        # SQLITE_BUSY at once instead of waiting, which would break the audit chain's
        # serialisation.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed on success, rolled back on any error."""
    async with sessions() as session, session.begin():
        yield session


_READS_ONLY = "clientvault_reads_only"


@asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads, for work that records nothing (background polls, garbage
    collection, fsck, metrics, the reads between an upload's transactions).

    On SQLite its transaction begins deferred, so it takes no write lock: it neither waits
    for writers nor holds them up, and in WAL mode it sees the database as of its first
    read. A session of `transaction` takes the write lock as it begins, even to read. Do not
    write in this one: on SQLite a write here fails at once if another writer committed
    since the first read. On PostgreSQL it is a plain session.
    """
    async with sessions() as session:
        await session.connection(execution_options={_READS_ONLY: True})
        yield session


def insert_missing(session: AsyncSession, model: type[Any], values: Mapping[str, object]) -> Insert:
    """An INSERT of one row that does nothing where the row's key is taken (`ON CONFLICT DO
    NOTHING`, on PostgreSQL and SQLite alike): its rowcount tells which happened."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(model).values(values).on_conflict_do_nothing()
    raise NotImplementedError(f"the {dialect} database is not supported")


def alembic_config(connection: Connection | None = None) -> Config:
    # Alembic (with Mako and Pygments, about 11 MiB) is loaded only to migrate, never to serve.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# As script.py.mako writes them (with either quote, since the template uses repr()).
_REVISION = re.compile(r"""^revision: str = ["'](\w+)["']$""", re.M)
_DOWN_REVISION = re.compile(r"""^down_revision: str \| None = ["'](\w+)["']$""", re.M)


@functools.cache  # the migrations that ship with this process do not change under it
def head_revision() -> str:
    """The newest migration: the one no other revises. Read from the migration files'
    headers, as Alembic writes them, so that checking a database needs no Alembic."""
    revised: set[str] = set()
    revisions: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found[1])
        if found := _DOWN_REVISION.search(source):
            revised.add(found[1])
    heads = revisions - revised
    if len(heads) != 1:
        raise VaultError(f"expected one head migration, found {sorted(heads) or 'none'}")
    return heads.pop()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at (Alembic's own table), None for an empty one."""

    def _current(connection: Connection) -> str | None:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found: str | None = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar()
        return found

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision`."""

    def _upgrade(connection: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def check_migrated(engine: AsyncEngine) -> None:
    """Raise `NotMigratedError` unless the schema is at the head revision."""
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise NotMigratedError(
            f"the database is {state}, this version needs {head}: run `clientvault migrate`"
        )
