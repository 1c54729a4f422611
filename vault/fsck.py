"""Consistency check of the object store against the database (`clientvault fsck`).

Both sides are walked in one pass, in key order: the store's listing (page by page) and the
versions (a server-side cursor ordered by storage key), merged like two sorted files. So a
million versions take bounded memory: one listing page, one batch of rows and the checks in
flight, never a set of all keys. A key only in the listing is an orphan, a key only in the
database a missing object, a key in both gets its size, header and data key checked (and with
`deep`, its whole plaintext decrypted and hashed).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import Select
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

import vault.crypto as crypto
from vault import audit, fsck_thumbnails, quarantine, uploads
from vault.audit.actions import AuditAction
from vault.crypto.blobs import first_failure, read_decrypted
from vault.crypto.keyring import Keyring
from vault.db import reading, transaction
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

__all__ = [
    "CONTENT",
    "HEADER",
    "KEY",
    "MISSING",
    "OBJECT_PREFIX",
    "ORPHAN",
    "SIZE",
    "UNREADABLE",
    "FsckReport",
    "Problem",
    "check_store",
]

logger = logging.getLogger(__name__)

OBJECT_PREFIX = "objects/"


@dataclass(frozen=True, slots=True)
class _Row:
    version_id: uuid.UUID
    document_id: uuid.UUID
    client_id: uuid.UUID
    number: int
    key: str
    object_size: int
    size: int
    sha256: str
    kek_id: str
    wrapped_dek: bytes
    header: bytes


def versions_page(dialect: str, prefix: str, after: str, batch: int) -> Select[*tuple[Any, ...]]:
    """The next `batch` versions under `prefix` after the key `after`, in byte order (on
    PostgreSQL a range scan of the "C"-collation index of migration 0024)."""
    statement = select_columns(
        col(Version.id),
        col(Version.document_id),
        col(Document.client_id),
        col(Version.number),
        col(Version.storage_key),
        col(Version.object_size),
        col(Version.size),
        col(Version.sha256),
        col(Version.kek_id),
        col(Version.wrapped_dek),
        col(Version.header),
    ).join(Document, col(Document.id) == col(Version.document_id))
    return key_page(statement, Version.storage_key, dialect, prefix, after, batch)


async def _versions(
    sessions: async_sessionmaker[AsyncSession], prefix: str, batch: int
) -> AsyncIterator[_Row]:
    """Every version under `prefix` in key order, `batch` rows per short transaction.

    Keyset pages rather than one long cursor: on SQLite every transaction takes the write
    lock, so one held for the whole scan would stop every upload until it ended.
    """
    last = ""
    while True:
        async with reading(sessions) as session:
            statement = versions_page(session.get_bind().dialect.name, prefix, last, batch)
            rows = [_Row(*row) for row in (await session.execute(statement)).all()]
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
        found = Problem(
            kind,
            key,
            detail,
            None if row is None else str(row.version_id),
            None if row is None else str(row.document_id),
            None if row is None else row.number,
        )
        self.on_problem(found)

    async def check(self, row: _Row, obj: StoredObject) -> None:
        if obj.size != row.object_size:
            self.problem(SIZE, row, row.key, f"{obj.size} bytes stored, {row.object_size} expected")
            return
        try:
            stored_header = b"".join(
                [c async for c in self.store.read(row.key, 0, crypto.HEADER_SIZE)]
            )
        except Exception as exc:  # any store error: name the object and go on with the rest
            self.problem(UNREADABLE, row, row.key, f"cannot read the header: {exc}")
            return
        try:
            dek = self.keyring.unwrap(row.kek_id, row.wrapped_dek)
        except (KeyNotFoundError, KeyringError) as exc:
            self.problem(KEY, row, row.key, str(exc))
            return
        context = crypto.ObjectContext(row.client_id, row.document_id, row.version_id)
        try:
            opened = crypto.parse_header(stored_header, context, dek)
        except IntegrityError as exc:
            self.problem(HEADER, row, row.key, str(exc))
            return
        if stored_header != row.header:
            # Downloads use the database's copy, so the object still opens; a restore from
            # the bucket alone would not.
            self.problem(HEADER, row, row.key, "the stored header differs from the database's copy")
            return
        if self.deep:
            await self._check_content(row, opened)

    async def _check_content(self, row: _Row, opened: crypto.OpenedHeader) -> None:
        digest = hashlib.sha256()
        size = 0
        try:
            async for piece in read_decrypted(
                self.store, row.key, opened=opened, object_size=row.object_size
            ):
                digest.update(piece)
                size += len(piece)
        except IntegrityError as exc:
            self.problem(CONTENT, row, row.key, f"fails authentication: {exc}")
            return
        except Exception as exc:  # a store error part-way: report it, check the rest
            self.problem(UNREADABLE, row, row.key, f"cannot read the content: {exc}")
            return
        if size != row.size or digest.hexdigest() != row.sha256:
            self.problem(CONTENT, row, row.key, "the plaintext does not match its SHA-256 digest")


async def check_store(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    context: audit.AuditContext,
    *,
    deep: bool = False,
    client_id: uuid.UUID | None = None,
    orphan_grace: timedelta = timedelta(minutes=10),
    on_problem: Callable[[Problem], None] = lambda problem: None,
    on_progress: Callable[[FsckReport], None] = lambda report: None,
    batch: int = 500,
    concurrency: int = 8,
    now: datetime | None = None,
) -> FsckReport:
    """Check that every version's object exists and opens, and that no object is orphaned;
    then the same of the thumbnails (`vault.fsck_thumbnails`).

    Every object must have the size the database expects, a header that parses and matches
    the database's copy, and a data key that unwraps under a known KEK; with `deep`, its whole
    plaintext must authenticate and match the recorded SHA-256. Objects no version and no
    live upload refers to are orphans, unless younger than `orphan_grace` (their version may
    be about to commit). Problems go to `on_problem` as found; the result holds counts. The
    run is recorded as a `storage.checked` audit event.

    Args:
        client_id: Check only this client's objects and versions.
        batch: Rows fetched per round trip from the database.
        concurrency: Objects checked at once (at most 2 with `deep`).
    """
    started = now or datetime.now(UTC)
    cutoff = started - orphan_grace
    prefix = OBJECT_PREFIX if client_id is None else f"{OBJECT_PREFIX}{client_id}/"
    # Only unfinished uploads and versions held in quarantine: few.
    live = await uploads.live_storage_keys(sessions) | await quarantine.held_storage_keys(sessions)
    report = FsckReport()
    checker = _Checker(store, keyring, deep, report, on_problem)
    if deep:
        # Each whole read holds the store's read window (S3: 4 × 8 MiB ranged GETs).
        concurrency = min(concurrency, 2)
    try:
        await _merge(
            sessions,
            store,
            checker,
            prefix,
            live=live,
            cutoff=cutoff,
            batch=batch,
            concurrency=concurrency,
            on_progress=on_progress,
        )
        await fsck_thumbnails.check_thumbnails(
            sessions,
            store,
            keyring,
            report,
            deep=deep,
            client_id=client_id,
            cutoff=cutoff,
            on_problem=on_problem,
            batch=batch,
            concurrency=concurrency,
        )
    except BaseExceptionGroup as group:
        # The task group wraps even one failure (the store's listing failing) in a group,
        # which no caller's `except` matches: raise the failure itself.
        raise first_failure(group) from None
    on_progress(report)
    async with transaction(sessions) as session:
        await audit.record(
            session,
            context,
            AuditAction.STORAGE_CHECKED,
            outcome="success" if report.clean else "error",
            client_id=client_id,
            details={
                "deep": deep,
                "versions": report.versions,
                "objects": report.objects,
                "thumbnails": report.thumbnails,
                "problems": dict(sorted(report.problems.items())),
            },
        )
    return report


async def _missing(
    checker: _Checker, sessions: async_sessionmaker[AsyncSession], store: ObjectStore, row: _Row
) -> None:
    # The listing and the rows are not one snapshot: look again before calling it missing.
    async with reading(sessions) as session:
        still = await session.get(Version, row.version_id)
    if still is None:
        return  # the version went (e.g. purged) while we looked
    try:
        found = await store.head(row.key)
    except Exception:  # the store's not-found error; vault cannot name storage's types
        checker.problem(MISSING, row, row.key, "no object in the store")
        return
    # It appeared after the listing passed its key; check it like any other.
    await checker.check(row, found)


async def _orphan(
    checker: _Checker,
    sessions: async_sessionmaker[AsyncSession],
    obj: StoredObject,
    *,
    live: set[str],
    cutoff: datetime,
) -> None:
    if obj.key in live or obj.last_modified > cutoff:
        checker.report.skipped_recent += obj.key not in live
        return
    # A version committed after the query began would be missing from its rows.
    async with reading(sessions) as session:
        referenced = (
            await session.execute(select(Version.id).where(Version.storage_key == obj.key))
        ).first()
    if referenced is None:
        checker.problem(ORPHAN, None, obj.key, f"{obj.size} bytes referenced by no version")


async def _merge(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    checker: _Checker,
    prefix: str,
    *,
    live: set[str],
    cutoff: datetime,
    batch: int,
    concurrency: int,
    on_progress: Callable[[FsckReport], None],
) -> None:
    """Walk the listing and the versions side by side, in key order."""
    report = checker.report
    limiter = anyio.Semaphore(concurrency)

    async def run_check(row: _Row, obj: StoredObject) -> None:
        try:
            await checker.check(row, obj)
        finally:
            limiter.release()

    async with contextlib.aclosing(ordered(store.list(prefix), "the store's listing")) as listing:
        rows = ordered(_versions(sessions, prefix, batch), "the version query")
        async with anyio.create_task_group() as tasks:
            steps = 0
            obj, row = await next_item(listing), await next_item(rows)
            while obj is not None or row is not None:
                if row is not None and (obj is None or row.key < obj.key):
                    report.versions += 1
                    await _missing(checker, sessions, store, row)
                    row = await next_item(rows)
                elif row is None or obj.key < row.key:
                    report.objects += 1
                    await _orphan(checker, sessions, obj, live=live, cutoff=cutoff)
                    obj = await next_item(listing)
                else:
                    report.versions += 1
                    report.objects += 1
                    await limiter.acquire()
                    tasks.start_soon(run_check, row, obj)
                    obj, row = await next_item(listing), await next_item(rows)
                steps += 1
                if steps % 1000 == 0:
                    on_progress(report)
