"""Segment claims and staged segments: how a resumable upload keeps any PATCH's whole
64 KiB segments, not only its whole parts (see docs/uploads.md, "Parts, segments and the
offset").

Nonce safety. Every segment of an upload has a fixed AES-GCM nonce (its index), so no index
may ever carry two different ciphertexts out of the process. A segment is sealed in memory,
and its GCM tag is committed to the part's `upload_parts` row under the upload's row lock
before its ciphertext goes anywhere (store, staging table, log). A part's tags always cover
a prefix of it (a request starts at the stored offset, never past what was claimed), and a
later claim must agree with every tag it overlaps, whichever process made it and whether or
not its bytes were ever stored: a crash between claiming and recording, or two PATCHes
racing on two nodes, can only let out the same plaintext again, sealed to the same
ciphertext; other bytes give another tag, and their ciphertext is dropped unseen.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio.to_thread
from sqlalchemy import CursorResult, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import crypto
from vault.db import insert_missing, reading, transaction
from vault.errors import ConflictError, NonceReuseError
from vault.uploads.resumable import Resumable, StagedRun, Upload, UploadPart, UploadState, locked

_T = crypto.SEGMENT_TAG_SIZE


def _reuse(number: int) -> NonceReuseError:
    return NonceReuseError(
        f"part {number} was already sent with different bytes; its encryption nonces "
        "cannot be used again, so start a new upload"
    )


async def claim_segments(
    sessions: async_sessionmaker[AsyncSession],
    sealer: crypto.SegmentSealer,
    upload_id: uuid.UUID,
    number: int,
    *,
    first: int,
    tags: bytes,
    plaintext: Callable[[], crypto.Chunk],
    size: int,
) -> str | None:
    """Claim segments `first ..` (counted within part `number`) by the GCM tags they were
    just sealed with, before their ciphertext leaves the process; the part's etag if the
    store already holds exactly this whole part.

    Args:
        plaintext: gives the claimed segments' plaintext, to check claims recorded by
            earlier releases (keyed HMAC tags, or one fingerprint per whole part); called,
            in a worker thread, only when a recorded tag differs from `tags` (the caller
            may have let the plaintext go, and decrypt what it sealed instead).
        size: plaintext bytes of the part from its start to the end of this claim.

    Raises:
        NonceReuseError: a segment was claimed before with different bytes. The caller
            must drop the ciphertext sealed for this claim.
    """
    async with transaction(sessions) as session:
        await locked(session, upload_id)
        if not first:
            # A part's first claim, the common case: one INSERT, no read.
            claim = {
                "upload_id": upload_id,
                "number": number,
                "fingerprint": hashlib.sha256(tags).digest(),
                "size": size,
                "tags": tags,
            }
            inserted = await session.execute(insert_missing(session, UploadPart, claim))
            if cast(CursorResult[Any], inserted).rowcount:
                return None
        part = await session.get(UploadPart, (upload_id, number))
        if part is None:
            raise ConflictError("the upload moved on; ask for its offset with HEAD")
        if part.tags is None:
            # Claimed whole by an early release: only the same whole part can be checked.
            if first or size != part.size:
                raise _reuse(number)
            earlier = await anyio.to_thread.run_sync(lambda: sealer.legacy_fingerprint(plaintext()))
            if not hmac.compare_digest(part.fingerprint, earlier):
                raise _reuse(number)
            return part.etag
        claimed = len(part.tags) // _T
        count = len(tags) // _T
        if first > claimed:
            raise ConflictError("the upload moved on; ask for its offset with HEAD")
        overlap = min(claimed, first + count) - first
        recorded = part.tags[first * _T : (first + overlap) * _T]
        if not hmac.compare_digest(recorded, tags[: overlap * _T]) and not await _legacy_match(
            sealer, recorded, tags, lambda: plaintext()[: overlap * sealer.segment_size]
        ):
            raise _reuse(number)
        if first + count > claimed:
            part.tags = part.tags + tags[overlap * _T :]
            part.size = size
            part.fingerprint = hashlib.sha256(part.tags).digest()
            session.add(part)
            return None
        return part.etag if first == 0 and count == claimed and size == part.size else None


async def _legacy_match(
    sealer: crypto.SegmentSealer,
    recorded: bytes,
    tags: bytes,
    plaintext: Callable[[], crypto.Chunk],
) -> bool:
    """Whether each recorded tag is the segment's GCM tag or, for a claim an earlier release
    recorded, its keyed HMAC tag: either matches only the same plaintext (2^-128 per try)."""
    earlier = await anyio.to_thread.run_sync(lambda: sealer.legacy_segment_tags(plaintext()))
    return all(
        hmac.compare_digest(recorded[i : i + _T], tags[i : i + _T])
        or hmac.compare_digest(recorded[i : i + _T], earlier[i : i + _T])
        for i in range(0, len(recorded), _T)
    )


async def staged_prefix(
    sessions: async_sessionmaker[AsyncSession], upload: Resumable, number: int
) -> bytes:
    """The plaintext of part `number` up to the upload's offset, from its staged segments,
    each authenticated as it is decrypted.

    Raises:
        ConflictError: the staged segments no longer cover that far (another request
            completed the part meanwhile: the client asks for the offset again).
    """
    segment = 1 << crypto.DEFAULT_SHIFT
    start = (number - 1) * upload.segments_per_part
    wanted = (upload.offset - (number - 1) * upload.part_size) // segment
    async with reading(sessions) as session:
        runs = list(
            (
                await session.execute(
                    select(StagedRun)
                    .where(
                        StagedRun.upload_id == upload.id,
                        col(StagedRun.first_segment) >= start,
                        col(StagedRun.first_segment) < start + wanted,
                    )
                    .order_by(col(StagedRun.first_segment))
                )
            ).scalars()
        )

    def open_runs() -> bytes:
        opened = crypto.parse_header(upload.header, upload.plan.context, upload.plan.dek)
        stride = segment + crypto.TAG_SIZE
        pieces: list[bytes] = []
        index = start
        for run in runs:
            if run.first_segment != index or len(run.ciphertext) != run.segments * stride:
                break
            needed = min(run.segments, start + wanted - index)
            pieces.append(
                open_segments(opened, index, memoryview(run.ciphertext)[: needed * stride])
            )
            index += run.segments
        if index - start < wanted:
            raise ConflictError("the upload moved on; ask for its offset with HEAD")
        return b"".join(pieces)

    return await anyio.to_thread.run_sync(open_runs)


def open_segments(
    opened: crypto.OpenedHeader, first: int, ciphertext: crypto.Chunk, *, final: bool = False
) -> bytes:
    """The plaintext of the sealed segments `first ..` (counted from the object's start) in
    `ciphertext`, each authenticated as it is decrypted; the last one sealed with the final
    flag if `final`."""
    stride = opened.segment_size + crypto.TAG_SIZE
    view = memoryview(ciphertext)
    count = max(1, -(-len(view) // stride))
    return b"".join(
        opened.open_segment(
            first + j, view[j * stride : (j + 1) * stride], last=final and j == count - 1
        )
        for j in range(count)
    )


def seal_run(
    sealer: crypto.SegmentSealer, first: int, plaintext: crypto.Chunk
) -> tuple[bytes, bytes]:
    """Seal whole segments `first ..` (none of them the object's last); the ciphertext and
    its GCM tags, which are claimed before the ciphertext is kept."""
    if not plaintext or len(plaintext) % sealer.segment_size:
        raise ValueError("a staged run holds whole segments")
    sealed, tags = crypto.seal_segments(sealer, first, plaintext, final=False)
    return bytes(sealed), tags


async def record_run(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    first: int,
    ciphertext: bytes,
    *,
    expires_in: timedelta,
) -> Upload:
    """Keep the sealed run of segments `first ..` (absolute) and move the offset past it.

    Only what continues the stored bytes is kept: a racing request may have stored some of
    the run already (the same ciphertext, since its tags were checked), or all of it.
    """
    segment = 1 << crypto.DEFAULT_SHIFT
    stride = segment + crypto.TAG_SIZE
    count = len(ciphertext) // stride
    async with transaction(sessions) as session:
        row = await locked(session, upload.id)
        if row.state != UploadState.OPEN:
            return row
        at = row.stored_offset // segment
        if first <= at < first + count and row.stored_offset % segment == 0:
            session.add(
                StagedRun(
                    upload_id=upload.id,
                    first_segment=at,
                    segments=first + count - at,
                    ciphertext=ciphertext[(at - first) * stride :],
                )
            )
            row.stored_offset = (first + count) * segment
        now = datetime.now(UTC)
        row.updated_at = now
        row.expires_at = now + expires_in
        session.add(row)
        return row


async def drop_staged(session: AsyncSession, upload: Resumable, number: int) -> None:
    """Forget the staged segments of part `number`, now stored whole."""
    start = (number - 1) * upload.segments_per_part
    await session.execute(
        delete(StagedRun).where(
            col(StagedRun.upload_id) == upload.id,
            col(StagedRun.first_segment) >= start,
            col(StagedRun.first_segment) < start + upload.segments_per_part,
        )
    )
