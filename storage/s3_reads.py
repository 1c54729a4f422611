"""Reading one object as consecutive ranged GETs, fetched ahead within a byte budget.

The ranged GET and the windowed, adaptive read-ahead behind `S3ObjectStore.read`;
`storage/s3.py` keeps the rest of the store and translates errors.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from storage.budget import ByteBudget

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# botocore retries failed requests, but not a response body that breaks off mid-way.
_BODY_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError)
_BODY_ATTEMPTS = 3


def get_range(client: S3Client, bucket: str, full_key: str, start: int, end: int) -> bytes:
    """Bytes `[start, end)` of an object, fewer if it ends sooner (blocking)."""
    for attempt in range(1, _BODY_ATTEMPTS + 1):
        try:
            response = client.get_object(
                Bucket=bucket, Key=full_key, Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # `start` is at or past the end of the object
            raise
        body = response["Body"]
        try:
            return body.read()
        except _BODY_ERRORS:
            if attempt == _BODY_ATTEMPTS:
                raise
        finally:
            body.close()
    raise AssertionError("unreachable")


async def read_windows(
    fetch: Callable[[int, int], bytes],
    *,
    start: int,
    end: int,
    chunk: int,
    first_window: int,
    read_ahead: int,
    concurrency: int,
    budget: ByteBudget,
) -> AsyncGenerator[bytes, None]:
    """Yield bytes `[start, end)` in order, one window per piece.

    Args:
        fetch: Blocking; bytes `[lo, hi)` of the object, fewer where it ends sooner. Runs in
            this read's own threads; its exceptions reach the consumer as they are.
        chunk: The largest window.
        first_window: The first window; later ones double up to `chunk`.
        read_ahead: The most bytes this read holds (in flight, or yielded and not yet
            consumed).
        concurrency: GETs in flight to begin with.
        budget: The process's bytes for all reads together.
    """
    # Adaptive read-ahead: the first window is small, so the first bytes (and short
    # ranges) come back quickly; each later one doubles up to `chunk`, so a long read
    # soon keeps `concurrency` large GETs in flight.
    window = min(chunk, first_window)
    # Adaptive concurrency: start with `concurrency` GETs in flight, and add one
    # each time the consumer has to wait for the store, up to what `read_ahead` holds.
    workers = max(concurrency, read_ahead // chunk)
    limit = min(concurrency, workers)
    # Windows are fetched by a pool of our own rather than by tasks, because a task group
    # cannot stay open across `yield`: this generator may be abandoned or finalised in
    # another task. Plain futures need no such care.
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-read")
    pending: deque[tuple[asyncio.Future[bytes], int]] = deque()
    held = 0  # bytes this read holds in the budget: in flight, or being consumed
    handed: list[bytes] = []  # the window on its way out
    position = start

    def start_window(size: int) -> None:
        nonlocal position, held, window
        lo, hi = position, position + size
        future = pool.submit(fetch, lo, hi)
        pending.append((asyncio.wrap_future(future), size))
        position, held = hi, held + size
        window = min(window * 2, chunk)

    async def fill() -> None:
        # Never more than `read_ahead` bytes for this read, nor more than the process's
        # budget for all reads: with nothing in flight we wait for our share
        # (back-pressure); with GETs in flight we only take what is free right now, so
        # a read never waits while holding bytes that others are waiting for.
        while position < end and len(pending) < limit:
            size = min(window, end - position)
            if held + size > read_ahead:
                return
            if pending or held:
                if not budget.try_acquire(size):
                    return
            else:
                await budget.acquire(size)
            start_window(size)

    try:
        while True:
            await fill()
            if not pending:
                return
            future, expected = pending.popleft()
            if not future.done():
                limit = min(limit + 1, workers)
            handed.append(await future)
            del future  # it holds the window too
            if len(handed[0]) < expected:
                # The object is shorter than `end`: the later windows are all empty.
                if handed[0]:
                    yield handed.pop()
                return
            await fill()
            # Handed over, not kept: the window is freed as soon as the consumer drops it
            # (typically once it is decrypted), not only when it comes back for more.
            yield handed.pop()
            # The consumer came back for more: it is done with that window.
            held -= expected
            budget.release(expected)
    finally:
        # Never waits: windows not started are cancelled, those in flight finish
        # in the background, and then the pool's threads exit.
        for future, _ in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        budget.release(held)
