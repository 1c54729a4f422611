"""Appending to a resumable upload (a tus PATCH): each whole part in the request body is
claimed, sealed, stored and recorded, in part order (see `vault.uploads` for the rules).

Nonce safety: a part's fingerprint is committed under the upload's row lock *before* the
part is encrypted, so a part offered again with different bytes is refused before any
AES-GCM call.
"""

from __future__ import annotations

import contextlib
import hmac
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vault import blobs, crypto
from vault.db import transaction
from vault.digests import RunningDigests
from vault.errors import NonceReuseError, NotFoundError, TooLargeError
from vault.store import ObjectStore
from vault.uploads import Resumable, Upload, UploadPart, UploadState, locked

# Parts of one request being written to the store at once.
_STORE_CONCURRENCY = 2


@dataclass(frozen=True, slots=True)
class Appended:
    """What one request added: the offset to report and whether the final part is stored."""

    offset: int
    parts_stored: int
    final_stored: bool
    expires_at: datetime | None


async def _claim_part(
    sessions: async_sessionmaker[AsyncSession],
    upload_id: uuid.UUID,
    number: int,
    fingerprint: bytes,
    size: int,
) -> str | None:
    """Record the part's fingerprint before anything is encrypted; the etag if already stored.

    Raises:
        NonceReuseError: a fingerprint for this part was recorded from different bytes.
    """
    async with transaction(sessions) as session:
        await locked(session, upload_id)
        part = await session.get(UploadPart, (upload_id, number))
        if part is None:
            session.add(
                UploadPart(upload_id=upload_id, number=number, fingerprint=fingerprint, size=size)
            )
            return None
        if not hmac.compare_digest(part.fingerprint, fingerprint):
            raise NonceReuseError(
                f"part {number} was already sent with different bytes; its encryption nonces "
                "cannot be used again, so start a new upload"
            )
        return part.etag


async def _record_part(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    number: int,
    etag: str,
    *,
    final: bool,
    expires_in: timedelta,
) -> Upload:
    async with transaction(sessions) as session:
        row = await locked(session, upload.id)
        if row.state == UploadState.COMPLETE:
            return row  # a racing request finished it meanwhile, with this very part
        part = await session.get(UploadPart, (upload.id, number))
        if part is None:
            raise NotFoundError("upload not found")
        part.etag = etag
        session.add(part)
        # Only a contiguous run of parts moves the offset; a duplicate request that stored
        # a part again finds the offset already past it.
        if not final and row.stored_offset == (number - 1) * upload.part_size:
            row.stored_offset = number * upload.part_size
        now = datetime.now(UTC)
        row.updated_at = now
        row.expires_at = now + expires_in
        session.add(row)
        return row


@dataclass(frozen=True, slots=True)
class _Received:
    number: int
    chunks: list[bytes] = field(repr=False)  # joined off the event loop
    final: bool


@dataclass(frozen=True, slots=True)
class _Plain:
    number: int
    data: bytes = field(repr=False)
    final: bool


@dataclass(frozen=True, slots=True)
class _Claimed:
    part: _Plain
    fingerprint: bytes
    etag: str | None  # the store has it already under this etag


@dataclass(frozen=True, slots=True)
class _Sealed:
    number: int
    ciphertext: bytes | None = field(repr=False)  # None: the store has it already...
    etag: str  # ...under this etag
    final: bool


@dataclass(slots=True)
class _Progress:
    stored: int = 0
    row: Upload | None = None


async def _claim_parts(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    received: MemoryObjectReceiveStream[_Received],
    claimed: MemoryObjectSendStream[_Claimed],
    hashing: MemoryObjectSendStream[_Plain] | None,
) -> None:
    """Record each part's fingerprint before anything is encrypted, in order; then hand it
    on to be sealed and, apart, to be hashed."""

    def fingerprint(chunks: list[bytes]) -> tuple[bytes, bytes]:
        data = b"".join(chunks)  # a join this large lets go of the GIL while it copies
        return data, sealer.fingerprint(data)

    async with received, claimed, hashing or contextlib.nullcontext():
        async for item in received:
            data, mark = await anyio.to_thread.run_sync(fingerprint, item.chunks)
            etag = await _claim_part(sessions, upload.id, item.number, mark, len(data))
            part = _Plain(item.number, data, item.final)
            await claimed.send(_Claimed(part, mark, etag))
            if hashing is not None:
                await hashing.send(part)


async def _hash_parts(
    upload: Resumable, digests: RunningDigests, hashing: MemoryObjectReceiveStream[_Plain]
) -> None:
    """Extend the running SHA-256 with each claimed part, in order, beside the sealing."""
    async with hashing:
        async for part in hashing:
            await digests.extend(upload.id, part.number, part.data)


async def _seal_parts(
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    claimed: MemoryObjectReceiveStream[_Claimed],
    sealed: MemoryObjectSendStream[_Sealed],
) -> None:
    """Encrypt each claimed part (unless the store has it), in order."""
    async with claimed, sealed:
        async for item in claimed:
            part = item.part

            def encrypt(part: _Plain = part, fingerprint: bytes = item.fingerprint) -> bytes:
                # The fingerprint just claimed is checked once more before any AES-GCM call;
                # the part is immutable bytes, so it is not computed again.
                return crypto.encrypt_part(
                    sealer,
                    part.number,
                    upload.segments_per_part,
                    part.data,
                    final=part.final,
                    recorded={part.number: fingerprint},
                    fingerprint=fingerprint,
                ).ciphertext

            ciphertext = None
            if item.etag is None:
                ciphertext = await anyio.to_thread.run_sync(encrypt)
            await sealed.send(_Sealed(part.number, ciphertext, item.etag or "", part.final))


@dataclass(slots=True)
class _Storing:
    """A part on its way into the store; `done` is set once it is there under `etag`."""

    number: int
    final: bool
    etag: str = ""
    done: anyio.Event = field(default_factory=anyio.Event)


async def _store_parts(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    sealed: MemoryObjectReceiveStream[_Sealed],
    storing: MemoryObjectSendStream[_Storing],
) -> None:
    """Write the encrypted parts to the store, `_STORE_CONCURRENCY` at a time (one part's
    wait for the disk or the network overlaps the next one's), passing them on in order."""
    limiter = anyio.Semaphore(_STORE_CONCURRENCY)

    async def write(part: _Sealed, ciphertext: bytes, item: _Storing) -> None:
        try:
            item.etag = await store.upload_part(
                upload.plan.storage_key, upload.multipart_id, part.number, ciphertext
            )
        except Exception:
            # A terminated or expired upload loses its multipart upload first: say so,
            # rather than report a store failure.
            async with transaction(sessions) as session:
                await locked(session, upload.id)
            raise
        finally:
            limiter.release()
        item.done.set()

    async with sealed, storing, anyio.create_task_group() as writes:
        async for part in sealed:
            item = _Storing(part.number, part.final, part.etag)
            if part.ciphertext is None:
                item.done.set()
            else:
                await limiter.acquire()
                writes.start_soon(write, part, part.ciphertext, item)
            await storing.send(item)


async def _record_parts(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    storing: MemoryObjectReceiveStream[_Storing],
    progress: _Progress,
    expires_in: timedelta,
) -> None:
    """Record each stored part, in order (the offset moves part by part)."""
    async with storing:
        async for item in storing:
            await item.done.wait()
            progress.row = await _record_part(
                sessions, upload, item.number, item.etag, final=item.final, expires_in=expires_in
            )
            progress.stored += 1


async def append(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    chunks: AsyncIterable[bytes],
    *,
    expires_in: timedelta,
    digests: RunningDigests | None = None,
) -> Appended:
    """Store the whole parts in `chunks`, which continue the upload at `upload.offset`.

    A pipeline, each stage working on its own part and in part order: claim (the
    fingerprint, recorded before anything is encrypted), seal (encrypt; beside it, extend
    the running SHA-256 in `digests`, if given: see `vault.digests`), store (two parts at a
    time) and record. So the request holds about ten parts of plaintext or ciphertext at
    most, whatever the upload's size. Bytes after the last whole part are dropped (the
    reported offset tells the client where to resume); the final part is stored only if the
    body ended exactly at the upload's length. It returns once every part it took is stored
    and recorded.

    Raises:
        TooLargeError: the body runs past the upload's length. Whole parts before that
            point are kept; the final part is not stored.
        NonceReuseError: a part was offered again with different bytes.
    """
    part_size, length = upload.part_size, upload.length
    cursor = upload.offset
    number = cursor // part_size + 1
    remaining = length - cursor
    sealer = upload.sealer()
    progress = _Progress()
    to_claim, arrived = anyio.create_memory_object_stream[_Received]()
    to_seal, claimed = anyio.create_memory_object_stream[_Claimed]()
    to_store, sealed = anyio.create_memory_object_stream[_Sealed]()
    to_record, stored = anyio.create_memory_object_stream[_Storing](_STORE_CONCURRENCY)
    final = False
    refused: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            to_hash: MemoryObjectSendStream[_Plain] | None = None
            if digests is not None:
                to_hash, hashing = anyio.create_memory_object_stream[_Plain](1)
                tasks.start_soon(_hash_parts, upload, digests, hashing)
            tasks.start_soon(_claim_parts, sessions, upload, sealer, arrived, to_seal, to_hash)
            tasks.start_soon(_seal_parts, upload, sealer, claimed, to_store)
            tasks.start_soon(_store_parts, sessions, store, upload, sealed, to_record)
            tasks.start_soon(_record_parts, sessions, upload, stored, progress, expires_in)
            async with to_claim:
                try:
                    pending: list[bytes] = []
                    pending_size = received = 0
                    async for chunk in chunks:
                        received += len(chunk)
                        if received > remaining:
                            raise TooLargeError(
                                f"the body runs past the upload's length of {length} bytes "
                                f"(it started at offset {upload.offset})"
                            )
                        # A part ending before the upload's length is whole at part_size bytes.
                        while (
                            cursor + part_size < length and pending_size + len(chunk) >= part_size
                        ):
                            cut = part_size - pending_size
                            pending.append(chunk[:cut])
                            chunk = chunk[cut:]
                            await to_claim.send(_Received(number, pending, final=False))
                            pending, pending_size = [], 0
                            cursor += part_size
                            number += 1
                        if chunk:
                            pending.append(chunk)
                            pending_size += len(chunk)
                    final = cursor + pending_size == length
                    if final:
                        await to_claim.send(_Received(number, pending, final=True))
                except Exception as exc:
                    # The parts already handed on are still stored before this is raised.
                    refused = exc
    except BaseExceptionGroup as group:
        raise blobs.first_failure(group) from None
    if refused is not None:
        raise refused
    return Appended(
        offset=cursor,
        parts_stored=progress.stored,
        final_stored=final,
        expires_at=None if progress.row is None else progress.row.expires_at,
    )
