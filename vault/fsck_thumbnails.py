"""`clientvault fsck` over thumbnails: every stored thumbnail's object exists, has its size,
and its header opens under its own data key and id; every object under `thumbnails/` is
referenced by a thumbnail row (one whose version is gone, or that was replaced, is listed as
an orphan: `clientvault gc` deletes it). With `deep`, each is decrypted whole.

Walked like the versions (`vault.fsck`): the store's listing and the rows, merged in key
order, in bounded memory.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import Select
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

import vault.crypto as crypto
from vault import thumbnails
from vault.crypto.blobs import read_decrypted
from vault.crypto.keyring import Keyring
from vault.db import reading
from vault.errors import IntegrityError, KeyNotFoundError, KeyringError
from vault.fsck_common import (
    CONTENT,
    HEADER,
    KEY,
    MISSING,
    ORPHAN,
    SIZE,
    UNREADABLE,
    FsckReport,
    Problem,
    key_page,
    next_item,
    ordered,
)
from vault.models import Document, Version
from vault.store import ObjectStore, StoredObject
from vault.thumbnails import Thumbnail


@dataclass(frozen=True, slots=True)
class _Row:
    thumbnail_id: uuid.UUID
    version_id: uuid.UUID
    document_id: uuid.UUID
    client_id: uuid.UUID
    number: int
    key: str
    object_size: int
    size: int
    kek_id: str
    wrapped_dek: bytes
    header: bytes


def prefix_for(client_id: uuid.UUID | None) -> str:
    return thumbnails.PREFIX if client_id is None else f"{thumbnails.PREFIX}{client_id}/"


def thumbnails_page(dialect: str, prefix: str, after: str, batch: int) -> Select[*tuple[Any, ...]]:
    """The next `batch` stored thumbnails under `prefix` after the key `after`, in byte
    order (on PostgreSQL a range scan of the "C"-collation index of migration 0024)."""
    statement = (
        select_columns(
            col(Thumbnail.id),
            col(Thumbnail.version_id),
            col(Version.document_id),
            col(Document.client_id),
            col(Version.number),
            col(Thumbnail.storage_key),
            col(Thumbnail.object_size),
            col(Thumbnail.size),
            col(Thumbnail.kek_id),
            col(Thumbnail.wrapped_dek),
            col(Thumbnail.header),
        )
        .join(Version, col(Version.id) == col(Thumbnail.version_id))
        .join(Document, col(Document.id) == col(Version.document_id))
    )
    return key_page(statement, Thumbnail.storage_key, dialect, prefix, after, batch)


async def _rows(
    sessions: async_sessionmaker[AsyncSession], prefix: str, batch: int
) -> AsyncIterator[_Row]:
    """Every stored thumbnail under `prefix` in key order, a batch per short transaction."""
    last = ""
    while True:
        async with reading(sessions) as session:
            statement = thumbnails_page(session.get_bind().dialect.name, prefix, last, batch)
            rows = [
                _Row(*row)  # stored ones: the key columns are set
                for row in (await session.execute(statement)).all()
            ]
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        last = rows[-1].key


@dataclass
class _Checker:
    store: ObjectStore
    keyring: Keyring
    deep: bool
    report: FsckReport
    on_problem: Callable[[Problem], None]

    def problem(self, kind: str, row: _Row | None, key: str, detail: str) -> None:
        self.report.problems[kind] += 1
        if row is None:
            self.on_problem(Problem(kind, key, detail))
            return
        self.on_problem(
            Problem(kind, key, detail, str(row.version_id), str(row.document_id), row.number)
        )

    async def check(self, row: _Row, obj: StoredObject) -> None:
        if obj.size != row.object_size:
            detail = f"thumbnail: {obj.size} bytes stored, {row.object_size} expected"
            self.problem(SIZE, row, row.key, detail)
            return
        try:
            stored = b"".join([c async for c in self.store.read(row.key, 0, crypto.HEADER_SIZE)])
        except Exception as exc:  # any store error: name the object and go on with the rest
            self.problem(UNREADABLE, row, row.key, f"thumbnail: cannot read the header: {exc}")
            return
        try:
            dek = self.keyring.unwrap(row.kek_id, row.wrapped_dek)
        except (KeyNotFoundError, KeyringError) as exc:
            self.problem(KEY, row, row.key, f"thumbnail: {exc}")
            return
        # A thumbnail's header binds its own id where a version's binds the version's.
        context = crypto.ObjectContext(row.client_id, row.document_id, row.thumbnail_id)
        try:
            opened = crypto.parse_header(stored, context, dek)
        except IntegrityError as exc:
            self.problem(HEADER, row, row.key, f"thumbnail: {exc}")
            return
        if stored != row.header:
            detail = "thumbnail: the stored header differs from the database's copy"
            self.problem(HEADER, row, row.key, detail)
            return
        if self.deep:
            await self._check_content(row, opened)

    async def _check_content(self, row: _Row, opened: crypto.OpenedHeader) -> None:
        size = 0
        try:
            async for piece in read_decrypted(
                self.store, row.key, opened=opened, object_size=row.object_size
            ):
                size += len(piece)
        except IntegrityError as exc:
            self.problem(CONTENT, row, row.key, f"thumbnail fails authentication: {exc}")
            return
        except Exception as exc:  # a store error part-way: report it, check the rest
            self.problem(UNREADABLE, row, row.key, f"thumbnail: cannot read it: {exc}")
            return
        if size != row.size:
            self.problem(CONTENT, row, row.key, f"thumbnail: {size} bytes, {row.size} expected")

    async def missing(self, sessions: async_sessionmaker[AsyncSession], row: _Row) -> None:
        # The listing and the rows are not one snapshot: look again before calling it missing.
        async with reading(sessions) as session:
            still = await session.get(Thumbnail, row.version_id)
        if still is None or still.storage_key != row.key:
            return  # replaced or deleted while we looked
        try:
            found = await self.store.head(row.key)
        except Exception:  # the store's not-found error; vault cannot name storage's types
            self.problem(MISSING, row, row.key, "thumbnail: no object in the store")
            return
        await self.check(row, found)

    async def orphan(
        self, sessions: async_sessionmaker[AsyncSession], obj: StoredObject, cutoff: datetime
    ) -> None:
        if obj.last_modified > cutoff:
            self.report.skipped_recent += 1  # a drawing about to be recorded
            return
        async with reading(sessions) as session:
            referenced = (
                await session.execute(
                    select(Thumbnail.version_id).where(Thumbnail.storage_key == obj.key)
                )
            ).first()
        if referenced is None:
            detail = (
                f"{obj.size} bytes: a thumbnail no version refers to (`clientvault gc` deletes it)"
            )
            self.problem(ORPHAN, None, obj.key, detail)


async def check_thumbnails(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    report: FsckReport,
    *,
    deep: bool,
    client_id: uuid.UUID | None,
    cutoff: datetime,
    on_problem: Callable[[Problem], None],
    batch: int,
    concurrency: int,
) -> None:
    """Walk the thumbnails' objects and rows side by side, counting into `report`."""
    checker = _Checker(store, keyring, deep, report, on_problem)
    limiter = anyio.Semaphore(concurrency)
    prefix = prefix_for(client_id)

    async def run_check(row: _Row, obj: StoredObject) -> None:
        try:
            await checker.check(row, obj)
        finally:
            limiter.release()

    async with contextlib.aclosing(ordered(store.list(prefix), "the store's listing")) as listing:
        rows = ordered(_rows(sessions, prefix, batch), "the thumbnail query")
        async with anyio.create_task_group() as tasks:
            obj, row = await next_item(listing), await next_item(rows)
            while obj is not None or row is not None:
                report.thumbnails += 1
                if row is not None and (obj is None or row.key < obj.key):
                    await checker.missing(sessions, row)
                    row = await next_item(rows)
                elif row is None or obj.key < row.key:
                    await checker.orphan(sessions, obj, cutoff)
                    obj = await next_item(listing)
                else:
                    await limiter.acquire()
                    tasks.start_soon(run_check, row, obj)
                    obj, row = await next_item(listing), await next_item(rows)
