"""Reading one object as consecutive windows, fetched ahead within a byte budget, for both
stores: S3 fetches a window with a ranged GET (`storage/s3_reads.py`), the local store with
a positioned read of the file (`storage/local.py`).

The buffers a read's windows are read into are anonymous mappings of the read's own, reused
window after window once no view of them is left.

A window read as a new bytes object of a megabyte or more is mapped afresh by the server's
allocator (web/malloc.py) and faulted in page by page, every time; a reused buffer is
faulted in once. A consumer that keeps a window simply keeps its buffer: it is reused only
when nothing views it any more.
"""

from __future__ import annotations

import asyncio
import mmap
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor

from storage.budget import ByteBudget

WindowBuffer = mmap.mmap


def new_buffer(size: int) -> WindowBuffer:
    # Private: an anonymous mapping is shared by default, and so kept as shared memory.
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)


def unviewed(buffer: WindowBuffer) -> bool:
    """Whether no view of `buffer` is alive, so it may take new bytes."""
    try:
        # An mmap refuses to resize, even to its own size, while any view of it is alive.
        buffer.resize(len(buffer))
    except BufferError:
        return False
    return True


class _Window:
    """One window of a read (a ranged GET, a positioned file read): its size, its outcome,
    and the buffer it is read into, which it waits for if it was asked for ahead of one."""

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
    threads: str,
) -> AsyncGenerator[memoryview, None]:
    """Yield bytes `[start, end)` in order, one window per piece.

    Each window is a view of a buffer of this read's, of the window's size, which takes the
    next window of that size once the consumer has come back for more and no longer holds
    any view of it (a consumer that keeps a window simply keeps its buffer), so a long read
    faults in its buffers once.

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
        concurrency: Windows in flight to begin with.
        budget: The process's bytes for all reads together.
        threads: The name of this read's threads (`s3-read`, `local-read`).
    """
    # Adaptive read-ahead: the first window is small, so the first bytes (and short
    # ranges) come back quickly; each later one doubles up to `chunk`, so a long read
    # soon keeps `concurrency` large windows in flight.
    window = min(chunk, first_window)
    # Adaptive concurrency: start with `concurrency` windows in flight, and add one each time
    # the consumer has to wait for the store, up to what `read_ahead` holds and one more.
    workers = max(concurrency, read_ahead // chunk) + 1
    limit = min(concurrency, workers)
    # Once the consumer has had to wait for the store, one more window is asked for than
    # `read_ahead` holds: the store starts on it, and (from S3) its bytes wait in the
    # connection, in the kernel's buffers, not this process, until a window's bytes are free
    # for it. A consumer that never waits (a slow client) leaves no connection idle.
    eager = False
    # Windows are fetched by a pool of our own rather than by tasks, because a task group
    # cannot stay open across `yield`: this generator may be abandoned or finalised in
    # another task. Plain futures need no such care.
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=threads)
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
        # A buffer is its window's size exactly, so what a read takes from the budget is
        # every byte it maps: a shorter window (the first ones, the last) gets a buffer of
        # its own, not a larger spare whose pages earlier windows have touched.
        fits = [i for i, buffer in enumerate(spare) if len(buffer) == asked.size]
        asked.buffer = spare.pop(fits[0]) if fits else new_buffer(asked.size)
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
