"""Thumbnails of images and of a PDF's first page, drawn from the decrypted version in
memory and kept as encrypted objects in the store, like the versions themselves.

A version's thumbnail is drawn ahead by `vault.thumbnail_worker` (or, if it has not yet,
on its first request), with `vault.thumbnail_render` in a worker thread, and recorded in
`thumbnails`; requests decrypt the stored one. Each stored
thumbnail has its own data key, wrapped by the keyring, and its own id in the object's
header, so it cannot be swapped with a version's object or another thumbnail. Plaintext is
never written to disk: the version is read into memory (only up to `max_bytes`), and the
drawing is encrypted as it is stored.

Two processes asking for the same new thumbnail at once may both draw it: the first row wins
(the primary key is the version), the other deletes its object. A version that cannot be
drawn (damaged, encrypted, a decompression bomb) is recorded as such and not tried again.

Seeing a thumbnail is seeing content, so the first time each person sees a version's
thumbnail is audited (`document.thumbnail_viewed`; docs/threat-model.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy import Column, LargeBinary, String, delete
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select

from vault import audit, crypto, thumbnail_jobs
from vault import thumbnail_render as drawing
from vault.audit.actions import AuditAction
from vault.crypto import blobs
from vault.crypto.keyring import Keyring
from vault.db import reading, transaction
from vault.documents import (
    get_document,
    get_version,
    open_version,
    record_integrity_failure,
)
from vault.errors import IntegrityError, KeyNotFoundError, NotFoundError, ThumbnailError
from vault.models import Document, Version, utcnow
from vault.policy import Permission, Principal, allows
from vault.store import ObjectStore

logger = logging.getLogger(__name__)

# Outside `objects/`: garbage collection and `fsck` match that prefix against versions.
PREFIX = "thumbnails/"
_FAILURE_LENGTH = 255


class Thumbnail(SQLModel, table=True):
    """A version's stored thumbnail, or why it has none (`failure`, and no object)."""

    __tablename__ = "thumbnails"
    version_id: uuid.UUID = Field(foreign_key="versions.id", primary_key=True)
    # The id bound into the object's header in place of a version id.
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    storage_key: str | None = Field(
        default=None, sa_column=Column(String(512), nullable=True, unique=True)
    )
    object_size: int = 0
    kek_id: str | None = Field(default=None, max_length=64, index=True)
    wrapped_dek: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    header: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    media_type: str = Field(default="", max_length=64)
    size: int = 0  # bytes of the encoded image
    failure: str | None = Field(
        default=None, sa_column=Column(String(_FAILURE_LENGTH), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow)


class ThumbnailView(SQLModel, table=True):
    """The first time a person saw a version's thumbnail (the one that was audited)."""

    __tablename__ = "thumbnail_views"
    version_id: uuid.UUID = Field(foreign_key="versions.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    viewed_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ThumbnailImage:
    """A thumbnail ready to send; `version_id` and `sha256` name its version."""

    data: bytes
    media_type: str
    version: int
    version_id: uuid.UUID
    sha256: str


@dataclass(frozen=True, slots=True)
class Source:
    """A version to draw, with what it takes to read it (read under the caller's checks)."""

    client_id: uuid.UUID
    document_id: uuid.UUID
    version_id: uuid.UUID
    number: int
    size: int
    sha256: str
    content_type: str
    storage_key: str
    object_size: int
    opened: crypto.OpenedHeader


def thumbnail_key(client_id: uuid.UUID, version_id: uuid.UUID, thumbnail_id: uuid.UUID) -> str:
    # One key per drawing: two processes drawing at once never write the same object.
    return f"{PREFIX}{client_id}/{version_id}/{thumbnail_id}"


def may_have_thumbnail(content_type: str, size: int, *, max_bytes: int) -> bool:
    """Whether a version of this type and size is worth asking a thumbnail for."""
    return drawing.thumbnailable(content_type) and 0 < size <= max_bytes


async def thumbnail(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    principal: Principal,
    context: audit.AuditContext,
    *,
    document_id: uuid.UUID,
    number: int | None,
    max_bytes: int,
    part_size: int,
    limiter: anyio.CapacityLimiter,
) -> ThumbnailImage:
    """The thumbnail of a version (the current one when `number` is None), drawn and stored
    on first request; the first view of it by each person is audited.

    Raises:
        NotFoundError: no such document or version for this caller (who must be allowed to
            download it: a thumbnail shows content).
        ThumbnailError: the version has no thumbnail (its type, its size, or it cannot be
            drawn safely).
    """
    async with transaction(sessions) as session:
        document = await get_document(session, principal, document_id)
        if not allows(principal, Permission.DOWNLOAD, document.client_id):
            raise NotFoundError("document not found")
        version = await get_version(session, document, number)
        if not drawing.thumbnailable(version.content_type):
            raise ThumbnailError(f"no thumbnail for {version.content_type}")
        cached = await session.get(Thumbnail, version.id)
        if cached is not None and cached.failure is not None:
            raise ThumbnailError(cached.failure)
        if cached is None and not may_have_thumbnail(
            version.content_type, version.size, max_bytes=max_bytes
        ):
            raise ThumbnailError(f"a version of {version.size} bytes is not drawn")
        source = source_of(keyring, document, version)
    data = await _read_cached(store, keyring, source, cached) if cached is not None else None
    if data is None:
        async with limiter:
            data = await draw_and_store(
                sessions,
                store,
                keyring,
                source,
                context,
                max_bytes=max_bytes,
                part_size=part_size,
            )
    async with transaction(sessions) as session:
        await _record_first_view(session, principal, context, source)
    return ThumbnailImage(
        data, drawing.OUTPUT_TYPE, source.number, source.version_id, source.sha256
    )


def source_of(keyring: Keyring, document: Document, version: Version) -> Source:
    """Raises KeyNotFoundError when the version's KEK is not in the keyring."""
    return Source(
        document.client_id,
        document.id,
        version.id,
        version.number,
        version.size,
        version.sha256,
        version.content_type,
        version.storage_key,
        version.object_size,
        open_version(keyring, document, version),
    )


def _context(source: Source, thumbnail_id: uuid.UUID) -> crypto.ObjectContext:
    return crypto.ObjectContext(source.client_id, source.document_id, thumbnail_id)


async def _collect(pieces: AsyncIterator[bytes | memoryview]) -> bytes:
    return b"".join([piece async for piece in pieces])


async def _read_cached(
    store: ObjectStore, keyring: Keyring, source: Source, cached: Thumbnail
) -> bytes | None:
    """The stored thumbnail's bytes; None when it is gone or unreadable (a database restored
    without it, a retired key, a damaged object): it is then drawn again."""
    assert cached.storage_key and cached.kek_id and cached.wrapped_dek and cached.header
    try:
        dek = keyring.unwrap(cached.kek_id, cached.wrapped_dek)
        opened = crypto.parse_header(cached.header, _context(source, cached.id), dek)
        return await _collect(
            blobs.read_decrypted(
                store, cached.storage_key, opened=opened, object_size=cached.object_size
            )
        )
    except (IntegrityError, KeyNotFoundError) as exc:
        logger.warning("stored thumbnail of version %s unusable: %s", source.version_id, exc)
    except Exception:  # the store's not-found error; vault cannot name storage's types
        logger.warning("stored thumbnail of version %s unreadable", source.version_id)
    return None


async def draw_and_store(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    source: Source,
    context: audit.AuditContext,
    *,
    max_bytes: int,
    part_size: int,
) -> bytes:
    """The version's thumbnail, drawn and stored unless another process did it first.

    Raises:
        ThumbnailError: it cannot be drawn (recorded, so it is not tried again), or is
            larger than `max_bytes`.
        IntegrityError: the version's object is damaged (recorded as an integrity failure).
    """
    async with reading(sessions) as session:
        # Drawn by another request while this one waited for its turn?
        done = await session.get(Thumbnail, source.version_id)
    if done is not None and done.failure is not None:
        raise ThumbnailError(done.failure)
    if done is not None:
        data = await _read_cached(store, keyring, source, done)
        if data is not None:
            return data
    if not may_have_thumbnail(source.content_type, source.size, max_bytes=max_bytes):
        raise ThumbnailError(f"a version of {source.size} bytes is not drawn")
    try:
        plaintext = await _collect(
            blobs.read_decrypted(
                store, source.storage_key, opened=source.opened, object_size=source.object_size
            )
        )
    except IntegrityError:
        # As a download would: the damaged version is recorded, nothing of it is drawn.
        with anyio.CancelScope(shield=True):
            async with transaction(sessions) as session:
                await record_integrity_failure(
                    session,
                    context,
                    client_id=source.client_id,
                    document_id=source.document_id,
                    version=source.number,
                )
        raise
    try:
        rendered = await anyio.to_thread.run_sync(render, plaintext, source.content_type)
    except ThumbnailError as exc:
        failed = Thumbnail(version_id=source.version_id, failure=str(exc)[:_FAILURE_LENGTH])
        if await _save(sessions, source, done, failed):
            await _drop_replaced(store, done)
        raise
    finally:
        del plaintext
    row = Thumbnail(version_id=source.version_id, media_type=rendered.media_type)
    dek = crypto.new_data_key()
    row.kek_id, row.wrapped_dek = keyring.wrap(dek)
    key = thumbnail_key(source.client_id, source.version_id, row.id)
    blob = await blobs.write_encrypted(
        store,
        key,
        _once(rendered.data),
        sealer=crypto.SegmentSealer(dek, _context(source, row.id)),
        part_size=part_size,
        expected_size=len(rendered.data),
    )
    row.storage_key, row.object_size, row.header = key, blob.object_size, blob.header
    row.size = len(rendered.data)
    if await _save(sessions, source, done, row):
        await _drop_replaced(store, done)
    else:
        with anyio.CancelScope(shield=True):
            await store.delete(key)
    return rendered.data


def render(data: bytes, content_type: str) -> drawing.Rendered:
    """Draw one thumbnail (blocking; the module's one call into the drawing code)."""
    return drawing.render(data, content_type)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _save(
    sessions: async_sessionmaker[AsyncSession],
    source: Source,
    stale: Thumbnail | None,
    row: Thumbnail,
) -> bool:
    """Record `row` (replacing `stale`, a stored one found unusable); False when another
    request recorded the version's thumbnail first, or the version is gone."""
    try:
        async with transaction(sessions) as session:
            if stale is not None:
                await session.execute(
                    delete(Thumbnail).where(
                        col(Thumbnail.version_id) == source.version_id,
                        col(Thumbnail.id) == stale.id,
                    )
                )
            session.add(row)
    except DBIntegrityError:
        return False
    return True


async def _drop_replaced(store: ObjectStore, stale: Thumbnail | None) -> None:
    if stale is None or not stale.storage_key:
        return
    with anyio.CancelScope(shield=True):
        try:
            await store.delete(stale.storage_key)
        except Exception:  # unreferenced now: `clientvault gc` deletes it later
            logger.warning("could not delete replaced thumbnail %s", stale.storage_key)


async def _record_first_view(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, source: Source
) -> None:
    user_id = principal.user_ref
    if user_id is None:
        return
    seen = ThumbnailView(version_id=source.version_id, user_id=user_id)
    session.add(seen)
    try:
        async with session.begin_nested():
            await session.flush()
    except DBIntegrityError:
        return  # seen before (or by a request racing this one): audited once already
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_THUMBNAIL_VIEWED,
        client_id=source.client_id,
        target_type="document",
        target_id=source.document_id,
        document_id=source.document_id,
        details={"version": source.number},
    )


async def record_failure(
    sessions: async_sessionmaker[AsyncSession], version_id: uuid.UUID, reason: str
) -> None:
    """Record that a version cannot be drawn (unless something is recorded for it already)."""
    try:
        async with transaction(sessions) as session:
            if await session.get(Thumbnail, version_id) is None:
                session.add(Thumbnail(version_id=version_id, failure=reason[:_FAILURE_LENGTH]))
    except DBIntegrityError:
        pass  # recorded by another process meanwhile, or the version is gone


async def drawn_versions(
    session: AsyncSession, document_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Which of these documents have their current version's thumbnail stored: the version
    number, by document. A listing offers only these, so no thumbnail it shows can fail."""
    if not document_ids:
        return {}
    rows = await session.execute(
        select(Version.document_id, Version.number)
        .join(Document, col(Document.id) == col(Version.document_id))
        .join(Thumbnail, col(Thumbnail.version_id) == col(Version.id))
        .where(
            col(Version.document_id).in_(document_ids),
            col(Version.number) == col(Document.current_version),
            col(Thumbnail.storage_key).is_not(None),
        )
    )
    return {row[0]: row[1] for row in rows.all()}


async def failed_documents(
    session: AsyncSession, document_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these documents have a current version found impossible to draw (so pages
    offer no thumbnail for it)."""
    if not document_ids:
        return set()
    rows = await session.execute(
        select(Version.document_id)
        .join(Document, col(Document.id) == col(Version.document_id))
        .join(Thumbnail, col(Thumbnail.version_id) == col(Version.id))
        .where(
            col(Version.document_id).in_(document_ids),
            col(Version.number) == col(Document.current_version),
            col(Thumbnail.failure).is_not(None),
        )
    )
    return set(rows.scalars())


async def forget(session: AsyncSession, version_ids: Sequence[uuid.UUID]) -> list[str]:
    """Delete the thumbnails of versions about to be deleted, in the caller's transaction;
    returns the storage keys to delete once it has committed."""
    if not version_ids:
        return []
    keys = (
        await session.execute(
            select(Thumbnail.storage_key).where(col(Thumbnail.version_id).in_(version_ids))
        )
    ).scalars()
    found = [key for key in keys if key]
    await thumbnail_jobs.forget(session, version_ids)
    await session.execute(
        delete(ThumbnailView).where(col(ThumbnailView.version_id).in_(version_ids))
    )
    await session.execute(delete(Thumbnail).where(col(Thumbnail.version_id).in_(version_ids)))
    return found


async def redraw_all(session: AsyncSession) -> int:
    """Forget every stored thumbnail and queue its version to be drawn again, in the caller's
    transaction: for a restored database, since backups leave the thumbnails' objects out.
    Failures stay recorded. Returns how many were queued."""
    drawn = list(
        (
            await session.execute(
                select(Thumbnail.version_id).where(col(Thumbnail.storage_key).is_not(None))
            )
        ).scalars()
    )
    await session.execute(delete(Thumbnail).where(col(Thumbnail.storage_key).is_not(None)))
    await thumbnail_jobs.forget(session, drawn)
    for version_id in drawn:
        session.add(thumbnail_jobs.ThumbnailJob(version_id=version_id))
    return len(drawn)


async def is_referenced(session: AsyncSession, key: str) -> bool:
    """Whether a thumbnail row refers to the object `key` (for garbage collection)."""
    found = await session.execute(select(Thumbnail.version_id).where(Thumbnail.storage_key == key))
    return found.first() is not None


async def rewrap(session: AsyncSession, keyring: Keyring, *, batch: int = 500) -> int:
    """Move every stored thumbnail's data key to the active KEK; returns how many."""
    active = keyring.active_id
    total = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(Thumbnail)
                    .where(col(Thumbnail.kek_id).is_not(None), Thumbnail.kek_id != active)
                    .limit(batch)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            assert row.kek_id is not None and row.wrapped_dek is not None
            row.kek_id, row.wrapped_dek = keyring.rewrap(row.kek_id, row.wrapped_dek)
            session.add(row)
        await session.flush()
        total += len(rows)
        if len(rows) < batch:
            return total
