"""Appending to a resumable upload (a tus PATCH): each whole part in the request body is
sealed, claimed, stored and recorded, in part order, and the whole segments after the last
whole part are staged (see `vault.uploads` for the rules, `vault.uploads.staging` for the
staging).

Nonce safety: a part is sealed in memory, and its segments' GCM tags are committed under the
upload's row lock *before* its ciphertext leaves the process, so a segment offered again
with different bytes is refused and its ciphertext dropped unseen.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from vault import crypto
from vault.crypto import blobs
from vault.crypto.digests import PartHash, RunningDigests
from vault.db import transaction
from vault.errors import NotFoundError, TooLargeError
from vault.store import ObjectStore
from vault.uploads import staging as upload_staging
from vault.uploads.budget import Budget, Share
from vault.uploads.part_buffer import PartBuffer, release_pages
from vault.uploads.resumable import (
    Resumable,
    Upload,
    UploadPart,
    UploadState,
    locked,
    put_whole,
)

# Parts of one request being written to the store at once.
STORE_CONCURRENCY = 2
# The most parts' worth of plaintext or ciphertext one request's pipeline holds: those
# being stored, and one more, being received or sealed (a part is sealed over its own
# plaintext, so it holds one part either way). The next part is received only once that
# one is on its way to the store: receiving and sealing a part takes a fraction of the time
# the store takes for one, so a part is ready whenever a store slot comes free.
PIPELINE_PARTS = 1 + STORE_CONCURRENCY
# A body sent with a checksum is kept in memory until all of it is checked (tus allows
# storing nothing of a body that fails its check): up to this many parts of it.
CHECKED_BODY_PARTS = 4
# The most one request holds, in parts: a checked body's kept parts, then its pipeline. A
# process's upload budget is never less, so such a request can always get its share.
REQUEST_PARTS = CHECKED_BODY_PARTS + PIPELINE_PARTS


@dataclass(frozen=True, slots=True)
class Appended:
    """What one request added: the offset to report and whether the final part is stored."""

    offset: int
    parts_stored: int
    final_stored: bool
    expires_at: datetime | None


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
        # One statement each, not a load and a flush: this runs for every part of every
        # upload (two transactions per part in all, with the claim).
        recorded = await session.execute(
            update(UploadPart)
            .where(col(UploadPart.upload_id) == upload.id, col(UploadPart.number) == number)
            .values(etag=etag)
            .execution_options(synchronize_session=False)
        )
        if not cast(CursorResult[Any], recorded).rowcount:
            raise NotFoundError("upload not found")
        now = datetime.now(UTC)
        row.updated_at = now
        row.expires_at = now + expires_in
        # Only a contiguous run moves the offset (from the part's start or its staged
        # segments); a duplicate request that stored a part again finds the offset past it.
        # The final part's staged segments stay: a failed finish has the client resend from
        # the offset they reach.
        start = (number - 1) * upload.part_size
        if not final and start <= row.stored_offset:
            # A part has staged segments only if the offset moved into it (each staged run
            # moves it past its end, and it never goes back), so a part received whole
            # from its start, as in any stream of parts, has none to drop.
            staged = row.stored_offset > start
            if row.stored_offset < number * upload.part_size:
                row.stored_offset = number * upload.part_size
            if staged:
                # Flushes the row's changes above as one UPDATE, before the DELETE.
                await upload_staging.drop_staged(session, upload, number)
        session.add(row)
        return row


@dataclass(frozen=True, slots=True)
class _Plain:
    number: int
    buffer: PartBuffer = field(repr=False)  # the part's own, never written again
    final: bool


@dataclass(frozen=True, slots=True)
class _Sealed:
    number: int
    ciphertext: memoryview | None = field(repr=False)  # None: the store has it already...
    etag: str  # ...under this etag
    final: bool
    buffer: memoryview | None = field(default=None, repr=False)  # the part's whole buffer


@dataclass(slots=True)
class _Progress:
    stored: int = 0
    row: Upload | None = None


async def _seal_parts(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    received: MemoryObjectReceiveStream[_Plain],
    sealed: MemoryObjectSendStream[_Sealed],
    digests: RunningDigests | None,
) -> None:
    """Seal each part in memory, in a worker thread, over its own plaintext, hashing each
    segment onto a copy of the running SHA-256 just before it is sealed; then claim its
    segments' tags, in order, before its ciphertext goes on to the store (a refused claim
    raises, and the ciphertext is dropped unseen). The hash counts only once the claim is in.
    """
    async with received, sealed:
        async for plain in received:
            hashing = None if digests is None else digests.start(upload.id, plain.number)
            part = await anyio.to_thread.run_sync(
                _seal, sealer, upload.segments_per_part, plain, hashing
            )
            etag = await upload_staging.claim_segments(
                sessions,
                sealer,
                upload.id,
                plain.number,
                first=0,
                tags=part.tags,
                plaintext=_sealed_plaintext(upload, sealer, part, final=plain.final),
                size=len(plain.buffer),
            )
            if digests is not None and hashing is not None:
                digests.commit(hashing)
            number, final, plain_buffer = plain.number, plain.final, plain.buffer.sealable
            del plain, hashing
            ciphertext = None if etag is not None else part.ciphertext
            buffer = None if etag is not None else plain_buffer
            del part, plain_buffer
            await sealed.send(_Sealed(number, ciphertext, etag or "", final, buffer))
            del ciphertext, buffer


def _seal(
    sealer: crypto.SegmentSealer, segments_per_part: int, plain: _Plain, hashing: PartHash | None
) -> crypto.EncryptedPart:
    return crypto.encrypt_part_in_place(
        sealer,
        plain.number,
        segments_per_part,
        plain.buffer.sealable,
        len(plain.buffer),
        final=plain.final,
        before=None if hashing is None else hashing.update,
    )


def _sealed_plaintext(
    upload: Resumable, sealer: crypto.SegmentSealer, part: crypto.EncryptedPart, *, final: bool
) -> Callable[[], bytes]:
    """The part's plaintext again, from its ciphertext (it was sealed over its plaintext):
    only a claim recorded by an earlier release needs it."""
    skip = len(sealer.header) if part.part_number == 1 else 0
    first = (part.part_number - 1) * upload.segments_per_part

    def plaintext() -> bytes:
        opened = crypto.parse_header(upload.header, upload.plan.context, upload.plan.dek)
        return upload_staging.open_segments(
            opened, first, memoryview(part.ciphertext)[skip:], final=final
        )

    return plaintext


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
    share: Share,
    spare: list[memoryview],
) -> None:
    """Write the encrypted parts to the store, `STORE_CONCURRENCY` at a time (one part's
    wait for the disk or the network overlaps the next one's), passing them on in order."""
    limiter = anyio.Semaphore(STORE_CONCURRENCY)

    async def write(part: _Sealed, ciphertext: memoryview, item: _Storing) -> None:
        try:
            if upload.multipart_id:
                item.etag = await store.upload_part(
                    upload.plan.storage_key, upload.multipart_id, part.number, ciphertext
                )
            else:
                item.etag = await put_whole(store, upload, ciphertext)
        except Exception:
            # A terminated or expired upload loses its multipart upload first: say so,
            # rather than report a store failure.
            async with transaction(sessions) as session:
                await locked(session, upload.id)
            raise
        finally:
            limiter.release()
            # The store is done with it (`ObjectStore.upload_part`). Stored, it takes the
            # next part this request receives, pages resident already (a fresh buffer's are
            # zeroed by the kernel as first written), its share handed on with it: one at
            # most, and none while the receiver waits for the budget. Otherwise (or not
            # stored: a resent part is sealed anew) its memory goes before its share does.
            buffer = part.buffer if item.etag and not share.waiting_for_budget else None
            if buffer is not None and not spare:
                spare.append(buffer)
                share.hand_on()
            else:
                release_pages(ciphertext)
                share.give()
        item.done.set()

    async with sealed, storing, anyio.create_task_group() as writes:
        while True:
            # A free slot first, then the next part: a part waiting for a slot stays
            # unencrypted upstream rather than held here as ciphertext.
            await limiter.acquire()
            try:
                part = await sealed.receive()
            except anyio.EndOfStream:
                break
            item = _Storing(part.number, part.final, part.etag)
            if part.ciphertext is None:
                item.done.set()
                limiter.release()
                share.give()
            else:
                writes.start_soon(write, part, part.ciphertext, item)
            del part
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
    budget: Budget | None = None,
) -> Appended:
    """Store the whole segments in `chunks`, which continue the upload at `upload.offset`.

    Whole parts go through a pipeline, each stage working on its own part and in part
    order: seal and claim (encrypt in memory, over the plaintext, hashing each segment onto
    the running SHA-256 in `digests`, if given, see `vault.crypto.digests`; then record the
    segments' GCM tags before the ciphertext leaves the process), store (two parts at a
    time) and record. So the request holds at most three parts of plaintext or ciphertext
    (the part being received or sealed, two being stored), whatever the upload's size. A
    part the upload's offset is inside of starts from its staged segments
    (`vault.uploads.staging`). The whole segments after the last whole part are sealed,
    claimed and staged in the database; only the bytes after the last whole segment are
    dropped (the reported offset tells the client where to resume). The final part is
    stored only if the body ended exactly at the upload's length. It returns once
    everything it took is stored and recorded.

    With a `budget` (one per process), each part's buffer takes a part's worth of it before
    it keeps its first byte, and gives it back once its ciphertext is stored (or hands it on,
    with the buffer, to the next part the request receives): a request
    that finds the budget spent stops reading its body until other parts are stored (the
    client's TCP window closes meanwhile), so all the requests of a process together hold
    about the budget in parts.

    Raises:
        TooLargeError: the body runs past the upload's length. Whole parts before that
            point are kept; the final part is not stored.
        NonceReuseError: a segment was offered again with different bytes.
        ConflictError: another request moved the upload on while this one started.
    """
    # Taking budget only ever waits while this request holds nothing that just its own
    # progress frees (the parts it took are stored, and given back, without taking more),
    # so requests cannot block each other for good.
    share = Share(budget, upload.part_size, limit=PIPELINE_PARTS)
    try:
        return await _append(sessions, store, upload, chunks, share, expires_in, digests)
    finally:
        share.give_all()


async def _append(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    chunks: AsyncIterable[bytes],
    share: Share,
    expires_in: timedelta,
    digests: RunningDigests | None,
) -> Appended:
    part_size, length = upload.part_size, upload.length
    number = upload.offset // part_size + 1
    part_start = (number - 1) * part_size
    remaining = length - upload.offset
    sealer = upload.sealer()
    progress = _Progress()
    to_seal, arrived = anyio.create_memory_object_stream[_Plain]()
    to_store, sealed = anyio.create_memory_object_stream[_Sealed]()
    to_record, stored = anyio.create_memory_object_stream[_Storing](STORE_CONCURRENCY)
    final = False
    refused: Exception | None = None

    def new_buffer(number: int) -> PartBuffer:
        lead = len(sealer.header) if number == 1 else 0
        # An upload shorter than a part gets a buffer of its length: one of a part's would
        # be backed by huge pages, and its first write would zero 2 MiB for a small file.
        return PartBuffer(min(part_size, length), sealer.segment_size, lead=lead)

    # Plaintext of part `number` from its start (its staged segments first, if any), copied
    # once into a buffer of its own as it arrives, where it is then sealed: no pieces to
    # join later. Only what has arrived is resident, so a small PATCH holds only what it
    # brought. Nothing is added to a buffer once it is handed on.
    filling = new_buffer(number)
    holding = False  # whether `filling` has its share of the budget yet
    if upload.offset > part_start:
        await share.take()
        holding = True
        filling.extend(await upload_staging.staged_prefix(sessions, upload, number))
    spare: list[memoryview] = []  # a stored part's buffer, for the next part (`_store_parts`)

    async def hold(part: PartBuffer) -> None:
        # The part's share of the budget (one a stored part handed on, if any), and that
        # part's buffer with it where the sizes agree.
        await share.take()
        if spare and not part.adopt(spare[-1]):
            release_pages(spare[-1])
        spare.clear()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_seal_parts, sessions, upload, sealer, arrived, to_store, digests)
            tasks.start_soon(_store_parts, sessions, store, upload, sealed, to_record, share, spare)
            tasks.start_soon(_record_parts, sessions, upload, stored, progress, expires_in)
            async with to_seal:
                try:
                    received = 0
                    async for chunk in chunks:
                        received += len(chunk)
                        if received > remaining:
                            raise TooLargeError(
                                f"the body runs past the upload's length of {length} bytes "
                                f"(it started at offset {upload.offset})"
                            )
                        piece = memoryview(chunk)
                        # A part ending before the upload's length is whole at part_size bytes.
                        while (
                            part_start + part_size < length
                            and len(filling) + len(piece) >= part_size
                        ):
                            if not holding:
                                await hold(filling)
                            cut = part_size - len(filling)
                            filling.extend(piece[:cut])
                            piece = piece[cut:]
                            await to_seal.send(_Plain(number, filling, final=False))
                            part_start += part_size
                            number += 1
                            filling, holding = new_buffer(number), False
                        if piece and not holding:
                            await hold(filling)
                            holding = True
                        filling.extend(piece)
                    final = part_start + len(filling) == length
                    if final:
                        await to_seal.send(_Plain(number, filling, final=True))
                except Exception as exc:
                    # The parts already handed on are still stored before this is raised.
                    refused = exc
    except BaseExceptionGroup as group:
        raise blobs.first_failure(group) from None
    finally:
        for buffer in spare:  # its share goes with the request's (`append`)
            release_pages(buffer)
        spare.clear()
    if refused is not None:
        raise refused
    offset = max(upload.offset, part_start)
    if not final:
        row = await _stage_tail(
            sessions, upload, sealer, number, filling, offset, expires_in=expires_in
        )
        if row is not None:
            progress.row = row
            offset = row.stored_offset if row.state == UploadState.OPEN else offset
    return Appended(
        offset=offset,
        parts_stored=progress.stored,
        final_stored=final,
        expires_at=None if progress.row is None else progress.row.expires_at,
    )


async def _stage_tail(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    number: int,
    received: PartBuffer,
    start: int,
    *,
    expires_in: timedelta,
) -> Upload | None:
    """Seal, claim and stage the whole segments of the unfinished part `number` that this
    request brought after `start` (its plaintext from the part's start is in `received`);
    the upload's row once they are recorded, None if there were none.

    The upload's last segment is never staged: it is sealed with the final flag, only in
    the final part (STREAM's truncation guard, docs/encryption.md).
    """
    segment = sealer.segment_size
    part_start = (number - 1) * upload.part_size
    have = part_start + len(received)
    last_segment = max(1, -(-upload.length // segment)) - 1
    end = min(have // segment, last_segment) * segment
    if end <= start:
        return None

    first = start // segment
    data = received.plaintext(start - part_start, end - part_start)
    ciphertext, tags = await anyio.to_thread.run_sync(upload_staging.seal_run, sealer, first, data)
    await upload_staging.claim_segments(
        sessions,
        sealer,
        upload.id,
        number,
        first=first - (number - 1) * upload.segments_per_part,
        tags=tags,
        plaintext=lambda: data,
        size=end - part_start,
    )
    return await upload_staging.record_run(
        sessions, upload, first, ciphertext, expires_in=expires_in
    )
