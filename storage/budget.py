"""A per-process budget of buffered bytes, shared by every read in flight.

Each ranged GET takes its size from the budget before it starts and gives it back once its
bytes have been consumed, so however many downloads run at once, the bytes fetched ahead of
their consumers stay under one bound. A read that cannot get bytes waits (back-pressure)
instead of failing; waiters are served in arrival order so a large request is not starved
by a stream of small ones.
"""

from __future__ import annotations

from collections import deque

import anyio


class ByteBudget:
    """A semaphore counted in bytes, for tasks of one event loop.

    Args:
        capacity: The most bytes that may be held at once, by all holders together.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._used = 0
        self._peak = 0
        self._waiters: deque[tuple[int, anyio.Event]] = deque()

    @property
    def capacity(self) -> int:
        """The bound on bytes held at once."""
        return self._capacity

    @property
    def in_use(self) -> int:
        """Bytes held right now."""
        return self._used

    @property
    def peak(self) -> int:
        """The most bytes ever held at once (for tests and measurements)."""
        return self._peak

    def __repr__(self) -> str:
        return f"ByteBudget(capacity={self._capacity}, in_use={self._used})"

    def _grant(self, size: int) -> None:
        self._used += size
        self._peak = max(self._peak, self._used)

    def _check(self, size: int) -> None:
        if not 0 < size <= self._capacity:
            raise ValueError(f"a request must be 1..{self._capacity} bytes, not {size}")

    def try_acquire(self, size: int) -> bool:
        """Take `size` bytes if they are free now and nobody is waiting; never blocks."""
        self._check(size)
        if self._waiters or self._used + size > self._capacity:
            return False
        self._grant(size)
        return True

    async def acquire(self, size: int) -> None:
        """Take `size` bytes, waiting until they are free."""
        if self.try_acquire(size):
            return
        event = anyio.Event()
        entry = (size, event)
        self._waiters.append(entry)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release(size)  # granted just as we were cancelled: hand it on
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        """Give back `size` bytes taken before."""
        if size < 0 or size > self._used:
            raise ValueError(f"releasing {size} bytes, but only {self._used} are held")
        self._used -= size
        self._wake()

    def _wake(self) -> None:
        # Strict arrival order: the head waiter blocks those behind it until it fits.
        while self._waiters and self._used + self._waiters[0][0] <= self._capacity:
            size, event = self._waiters.popleft()
            self._grant(size)
            event.set()
