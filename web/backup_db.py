"""The database half of a backup: `pg_dump` of an exported snapshot on PostgreSQL, the
SQLite online-backup API on SQLite, and their restore into an empty database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vault.db import create_engine
from vault.errors import BackupError

POSTGRES_FILE = "database.dump"
SQLITE_FILE = "database.sqlite"


def kind(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for `url`, and the environment carrying its password (never
    on a command line, where `ps` shows it to every local user)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # The driver's query options (asyncpg's ssl=…) are not libpq's: use PGSSLMODE and friends.
    dsn = parsed.set(drivername="postgresql", password=None, query={})
    return dsn.render_as_string(hide_password=False), env


def _tool(pg_bin: str | None, name: str) -> str:
    found = str(Path(pg_bin) / name) if pg_bin else shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise BackupError(f"{name} not found: install the PostgreSQL client or pass --pg-bin")
    return found


async def _run(args: Sequence[str], env: Mapping[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()
        raise BackupError(f"{Path(args[0]).name} failed ({process.returncode}): {message}")


@asynccontextmanager
async def snapshot(
    engine: AsyncEngine, url: str, dest: Path, *, pg_bin: str | None = None
) -> AsyncIterator[tuple[str, AsyncSession]]:
    """Write the database to `dest` and yield (its file name, a read-only session on the
    very state the file holds), so what is read next matches the dump exactly."""
    if kind(url) == "sqlite":
        database = make_url(url).database
        if not database:
            raise BackupError("an in-memory SQLite database cannot be backed up")
        copy = dest / SQLITE_FILE
        await anyio.to_thread.run_sync(_sqlite_copy, Path(database), copy)
        reader = create_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            async with AsyncSession(reader) as session:
                yield SQLITE_FILE, session
        finally:
            await reader.dispose()
        return
    dsn, env = _libpq(url)
    async with engine.connect() as conn:
        # pg_dump joins this transaction's snapshot (pg_export_snapshot, PostgreSQL docs
        # §9.27.5); REPEATABLE READ keeps every later query in it on that same snapshot.
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            name = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            args = [_tool(pg_bin, "pg_dump"), "--format=custom", "--no-password"]
            args += [f"--snapshot={name}", f"--file={dest / POSTGRES_FILE}", dsn]
            await _run(args, env)
            os.chmod(dest / POSTGRES_FILE, 0o600)
            async with AsyncSession(bind=conn) as session:
                yield POSTGRES_FILE, session


def _sqlite_copy(source: Path, target: Path) -> None:
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # The online-backup API copies one consistent state even while the app writes (WAL).
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


async def is_empty(engine: AsyncEngine) -> bool:
    """Whether the database has no tables at all (a restore never merges into data)."""
    async with engine.connect() as conn:
        tables: list[str] = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return not tables


async def restore(url: str, source: Path, *, pg_bin: str | None = None) -> None:
    """Load the backup's database file into the (empty) database `url`."""
    if kind(url) == "sqlite":
        database = make_url(url).database
        if not database:
            raise BackupError("cannot restore into an in-memory SQLite database")
        await anyio.to_thread.run_sync(_sqlite_restore, source / SQLITE_FILE, Path(database))
        return
    dsn, env = _libpq(url)
    # Ownership and grants are the target server's business (docs/deploy.md: roles); one
    # transaction, so a failed restore leaves the database empty and the command can rerun.
    args = [_tool(pg_bin, "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    args += ["--single-transaction", "--no-password", f"--dbname={dsn}"]
    await _run([*args, str(source / POSTGRES_FILE)], env)


def _sqlite_restore(source: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.restoring")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            target.with_name(target.name + suffix).unlink()
    partial.replace(target)
