"""Reading one object as consecutive ranged GETs, fetched ahead within a byte budget.

The ranged GET and the windowed, adaptive read-ahead behind `S3ObjectStore.read`;
`storage/s3.py` keeps the rest of the store and translates errors.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody

from storage.budget import ByteBudget
from storage.errors import StorageError
from storage.windows import WindowBuffer, new_buffer, unviewed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# botocore retries failed requests, but not a response body that breaks off mid-way.
_BODY_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError)
_BODY_ATTEMPTS = 3
T = TypeVar("T")


def get_range(client: S3Client, bucket: str, full_key: str, start: int, end: int) -> bytes:
    """Bytes `[start, end)` of an object, fewer if it ends sooner (blocking)."""
    data: bytes = _get(client, bucket, full_key, start, end, lambda body: body.read(), b"")
    return data


def get_range_into(
    client: S3Client,
    bucket: str,
    full_key: str,
    start: int,
    end: int,
    into: Callable[[], WindowBuffer | None],
) -> int:
    """Read bytes `[start, end)` of an object into the start of the buffer `into` gives;
    returns how many, fewer if it ends sooner (blocking).

    `into` is called once the GET has answered, and may block until a buffer is free; None
    means the read was given up: the body is left unread and 0 returned.
    """

    def take(body: StreamingBody) -> int:
        buffer = into()
        return 0 if buffer is None else _read_into(body, memoryview(buffer)[: end - start])

    return _get(client, bucket, full_key, start, end, take, 0)


def _get(
    client: S3Client,
    bucket: str,
    full_key: str,
    start: int,
    end: int,
    take: Callable[[StreamingBody], T],
    empty: T,
) -> T:
    for attempt in range(1, _BODY_ATTEMPTS + 1):
        try:
            response = client.get_object(
                Bucket=bucket, Key=full_key, Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return empty  # `start` is at or past the end of the object
            raise
        body = response["Body"]
        try:
            return take(body)
        except _BODY_ERRORS:
            if attempt == _BODY_ATTEMPTS:
                raise
        finally:
            body.close()
    raise AssertionError("unreachable")


def _read_into(body: StreamingBody, view: memoryview) -> int:
    # botocore's and urllib3's reads return a new bytes object, which at 4 MiB the server's
    # allocator maps afresh (web/malloc.py), faulting in every page of every window; the
    # HTTP response underneath reads from the socket straight into `view`. Where it is not
    # there (another urllib3), the window is read and copied in.
    raw: Any = getattr(body, "_raw_stream", None)
    response = getattr(raw, "_fp", None)
    expected = getattr(body, "_content_length", None)
    if response is None or expected is None or not hasattr(raw, "release_conn"):
        data = body.read()
        if len(data) > len(view):
            raise StorageError(f"S3 returned {len(data)} bytes for a range of {len(view)}")
        view[: len(data)] = data
        return len(data)
    expected = int(expected)
    if expected > len(view):
        raise StorageError(f"S3 announced {expected} bytes for a range of {len(view)}")
    filled = 0
    while filled < expected:
        try:
            count = response.readinto(view[filled:expected])
        except (OSError, HTTPException) as exc:
            # What urllib3 would have raised, so that the GET is tried again.
            raise ResponseStreamingError(error=exc) from exc
        if not count:
            raise IncompleteReadError(actual_bytes=filled, expected_bytes=expected)
        filled += count
    # Read to its end: the connection goes back to the pool for the next window.
    raw.release_conn()
    return filled


class _Window:
    """One ranged GET of a read: its size, its outcome, and the buffer it is read into, which
    it waits for if it was asked for ahead of one."""

    __slots__ = ("buffer", "done", "given", "size")

    def __init__(self, size: int, done: asyncio.Future[int], given: Future[WindowBuffer | None]):
        self.size = size
        self.done = done
        self.given = given
        self.buffer: WindowBuffer | None = None


async def read_windows(
    fetch: Callable[[int, int, Callable[[], WindowBuffer | None]], int],
    *,
    start: int,
    end: int,
    chunk: int,
    first_window: int,
    read_ahead: int,
    concurrency: int,
    budget: ByteBudget,
) -> AsyncGenerator[memoryview, None]:
    """Yield bytes `[start, end)` in order, one window per piece.

    Each window is a view of a buffer of this read's, which takes the next window once the
    consumer has come back for more and no longer holds any view of it (a consumer that
    keeps a window simply keeps its buffer), so a long read faults in its buffers once.

    Args:
        fetch: Blocking; reads bytes `[lo, hi)` of the object into the start of the buffer
            its third argument returns, and returns how many, fewer where the object ends
            sooner. It calls that argument once the store has answered: it blocks until
            the window has a buffer, and returns None if the read was given up meanwhile
            (fetch then returns 0 without reading). Runs in this read's own threads; its
            exceptions reach the consumer as they are.
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
    # Adaptive concurrency: start with `concurrency` GETs in flight, and add one each time
    # the consumer has to wait for the store, up to what `read_ahead` holds and one more.
    workers = max(concurrency, read_ahead // chunk) + 1
    limit = min(concurrency, workers)
    # Once the consumer has had to wait for the store, one more window is asked for than
    # `read_ahead` holds: the store starts on it, and its bytes wait in the connection (in
    # the kernel's buffers, not this process) until a window's bytes are free for it. A
    # consumer that never waits (a slow client) leaves no connection idle.
    eager = False
    # Windows are fetched by a pool of our own rather than by tasks, because a task group
    # cannot stay open across `yield`: this generator may be abandoned or finalised in
    # another task. Plain futures need no such care.
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-read")
    pending: deque[_Window] = deque()
    held = 0  # bytes this read holds in the budget: in flight, or being consumed
    handed: list[memoryview] = []  # the window on its way out
    # Buffers of windows the consumer is done with and holds no view of, for the next
    # windows; `fill` lets go of those it leaves. A buffer still viewed stays with its viewer.
    spare: list[WindowBuffer] = []
    position = start

    def ask(size: int) -> _Window:
        nonlocal position, window
        given: Future[WindowBuffer | None] = Future()
        done = pool.submit(fetch, position, position + size, given.result)
        pending.append(_Window(size, asyncio.wrap_future(done), given))
        position, window = position + size, min(window * 2, chunk)
        return pending[-1]

    def give(asked: _Window) -> None:
        nonlocal held
        asked.buffer = spare.pop() if spare else new_buffer(chunk)
        asked.given.set_result(asked.buffer)
        held += asked.size

    def let_go() -> None:
        # Memory the budget does not count is not kept waiting.
        while spare:
            spare.pop().close()

    async def take(size: int) -> bool:
        # Never more than `read_ahead` bytes for this read, nor more than the process's
        # budget for all reads: holding nothing, we wait for our share (back-pressure);
        # holding bytes, we only take what is free right now, so a read never waits while
        # holding bytes that others are waiting for.
        if held + size > read_ahead:
            return False
        if held:
            return budget.try_acquire(size)
        let_go()
        await budget.acquire(size)
        return True

    async def fill() -> None:
        # Buffers go to windows in order, so the oldest window always has one (or holds
        # nothing back from getting one) when the consumer waits for it.
        try:
            for asked in pending:
                if asked.buffer is None:
                    if not await take(asked.size):
                        return
                    give(asked)
            ahead = 0
            while position < end and len(pending) < limit:
                size = min(window, end - position)
                if not ahead and await take(size):
                    give(ask(size))
                elif eager and not ahead:
                    ask(size)
                    ahead = 1
                else:
                    return
        finally:
            let_go()

    first = True
    try:
        while True:
            await fill()
            if not pending:
                return
            current = pending.popleft()
            if not current.done.done():
                limit = min(limit + 1, workers)
                # The first window is always waited for; a later one, only by a consumer
                # faster than the store.
                eager = eager or not first
            first = False
            count = await current.done
            buffer = current.buffer
            expected = current.size
            del current
            if buffer is None:  # unreachable: `fill` gives the oldest window a buffer
                raise AssertionError("a window was read without a buffer")
            handed.append(memoryview(buffer)[:count])
            if count < expected:
                # The object is shorter than `end`: the later windows are all empty.
                if count:
                    yield handed.pop()
                return
            await fill()
            # Handed over, not kept: the window is freed as soon as the consumer drops it
            # (typically once it is decrypted), not only when it comes back for more.
            yield handed.pop()
            # The consumer came back for more: it is done with that window.
            held -= expected
            budget.release(expected)
            if unviewed(buffer):
                spare.append(buffer)
            del buffer
    finally:
        # Never waits: windows not started are cancelled, those asked ahead are told the
        # read is over, those in flight finish in the background; then the pool's threads
        # exit.
        for asked in pending:
            asked.done.cancel()
            if asked.buffer is None:
                asked.given.set_result(None)
        pool.shutdown(wait=False, cancel_futures=True)
        budget.release(held)
        let_go()
