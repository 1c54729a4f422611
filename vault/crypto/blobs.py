"""Encrypted objects in the store: stream plaintext in as encrypted multipart parts, and
stream any plaintext byte range back out, verified segment by segment.

Memory per transfer is bounded by `part_size × (concurrency + 1)` on the way in and by the
store's read window on the way out, whatever the object size. Plaintext never touches disk.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import anyio

import vault.crypto.stream as crypto
from vault.crypto.buffers import page_buffer
from vault.errors import IncompleteUploadError, TooLargeError
from vault.store import ObjectStore, part_size_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What a finished write tells the caller to record in the database."""

    key: str
    object_size: int
    plaintext_size: int
    sha256: str
    header: bytes


async def write_encrypted(
    store: ObjectStore,
    key: str,
    chunks: AsyncIterable[crypto.Chunk],
    *,
    sealer: crypto.SegmentSealer,
    part_size: int,
    concurrency: int = 4,
    expected_size: int | None = None,
    max_size: int | None = None,
) -> StoredBlob:
    """Encrypt `chunks` into the new object `key`: in one request if its ciphertext is
    shorter than a part, else as a multipart upload.

    Parts are uploaded while later plaintext is still arriving, at most `concurrency` at a
    time. They are `part_size` long, or longer where the store's `MAX_PARTS` of that size
    would not hold the most bytes the body may bring (`vault.store.part_size_for`).

    The multipart upload starts once the first part is full. A smaller object is stored
    with `put_new`: on the RGW a multipart upload of one small part cost about four times
    the store's CPU of a single PUT, and three requests where that takes two.

    Any failure (the client going away, a short body, the store failing) aborts the
    multipart upload, so nothing half-written ever becomes visible.

    Raises:
        IncompleteUploadError: fewer bytes arrived than `expected_size`.
        TooLargeError: more bytes arrived than `expected_size` or `max_size` allow.
    """
    limit = expected_size if expected_size is not None else max_size
    if limit is not None:
        part_size = part_size_for(crypto.object_size(limit), part_size)
    encryptor = crypto.Encryptor(sealer)
    upload_id: str | None = None
    etags: dict[int, str] = {}
    try:
        limiter = anyio.Semaphore(concurrency)
        # A stored part's buffer takes the next part's ciphertext: its pages are resident
        # already, where each page of a fresh buffer is faulted in and zeroed by the kernel
        # as it is first written. The store is done with a part's bytes once `upload_part`
        # has returned (`vault.store.ObjectStore`). A spare stands for the upload slot its
        # part freed, so parts in flight and spares together never pass `concurrency`: the
        # write holds, and ever maps, no more than `concurrency + 1` parts. Keeping only one
        # would let two parts stored together cost a fresh mapping later.
        spare: list[memoryview] = []

        async def upload(upload_id: str, number: int, data: memoryview) -> None:
            try:
                etags[number] = await store.upload_part(key, upload_id, number, data)
                if len(data) == part_size:
                    spare.append(data)
            finally:
                limiter.release()

        def next_buffer() -> memoryview:
            return spare.pop() if spare else page_buffer(part_size)

        async with anyio.create_task_group() as tasks:
            # Each part's ciphertext is copied once, into a buffer of its own that costs
            # memory only as it fills: no joining of pieces, no slicing of the join.
            filling, filled, number = next_buffer(), 0, 0

            async def add(pieces: list[bytes]) -> None:
                nonlocal filling, filled, number, upload_id
                for piece in pieces:
                    view = memoryview(piece)
                    while view:
                        take = min(len(view), part_size - filled)
                        filling[filled : filled + take] = view[:take]
                        filled, view = filled + take, view[take:]
                        if filled == part_size:
                            if upload_id is None:
                                upload_id = await store.create_multipart(key)
                            number += 1
                            await limiter.acquire()
                            tasks.start_soon(upload, upload_id, number, filling)
                            filling, filled = next_buffer(), 0

            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if limit is not None and received > limit:
                    raise TooLargeError(f"the body is larger than the {limit} bytes allowed")
                await add(encryptor.feed(chunk))
            if expected_size is not None and received != expected_size:
                raise IncompleteUploadError(
                    f"the body ended after {received} of {expected_size} bytes"
                )
            await add(encryptor.finish())
            if upload_id is not None and filled:
                await limiter.acquire()
                tasks.start_soon(upload, upload_id, number + 1, filling[:filled])
        if upload_id is not None:
            await store.complete_multipart(key, upload_id, sorted(etags.items()))
        elif await store.put_new(key, bytes(filling[:filled])) is None:
            # Every write has a key of its own (a new row's id in it): a bug, not a race.
            raise RuntimeError(f"the new object {key} already exists")
    except BaseException as exc:
        if upload_id is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await store.abort_multipart(key, upload_id)
                except Exception:
                    # The object never became visible; `clientvault gc` clears leftover parts.
                    logger.warning("could not abort multipart upload of %s", key, exc_info=True)
        if isinstance(exc, BaseExceptionGroup):
            # The task group wraps even a single failure (a short body, a store error) in a
            # group, which no caller's `except` or error handler matches: raise the failure.
            raise first_failure(exc) from None
        raise
    return StoredBlob(
        key=key,
        object_size=crypto.object_size(encryptor.plaintext_size),
        plaintext_size=encryptor.plaintext_size,
        sha256=encryptor.sha256_hex,
        header=sealer.header,
    )


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a failed transfer raises: the first in `group`, though anything
    that is not an `Exception` (e.g. `KeyboardInterrupt`) comes first; the rest are logged."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    leaves.sort(key=lambda exc: isinstance(exc, Exception))
    for other in leaves[1:]:
        logger.info("a further failure in the same upload: %r", other)
    return leaves[0]


async def read_decrypted(
    store: ObjectStore,
    key: str,
    *,
    opened: crypto.OpenedHeader,
    object_size: int,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes | memoryview]:
    """Plaintext bytes `[start, end)`, fetching only the segments that cover them.

    Every segment is authenticated before any of its bytes are yielded; a tampered,
    truncated or swapped object raises `IntegrityError` part-way, never returns garbage.
    """
    size = crypto.plaintext_size(object_size)
    end = size if end is None else min(end, size)
    if start >= end:
        return
    first_index, ct_start, ct_end = crypto.ciphertext_range(start, end, object_size)
    async for piece in crypto.decrypt_range(
        opened,
        store.read(key, ct_start, ct_end),
        first_index=first_index,
        plain_start=start,
        plain_end=end,
        object_size=object_size,
    ):
        yield piece
