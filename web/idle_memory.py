"""Memory back to the system whenever the process falls idle after a transfer.

A large transfer leaves megabytes free inside the allocator's heaps (its thread's arena
above all), which the process would go on holding at rest and carry into the next
transfer: measured, a server on S3 went from 120 to 124–129 MiB at rest over a few uploads
and downloads, and `malloc_trim(0)` took it back to 122. So when the last request in
flight ends, and requests have moved at least `after` bytes of bodies since the last
time, the free pages go back (`web.malloc.release_free_memory`), with the spare buffers
downloads decrypt into (`vault.crypto.ranges.drop_spare_pieces`): a few milliseconds at a
moment when no request is waiting, and never for a run of small requests.

`web.observe.ObserveMiddleware`, which counts every request and its body bytes anyway,
tells an `IdleRelease` when a request starts and ends.
"""

from __future__ import annotations

from collections.abc import Callable

from vault.crypto.ranges import drop_spare_pieces
from web.malloc import release_free_memory

TRANSFER = 8 << 20


def release_idle_memory() -> None:
    drop_spare_pieces()
    release_free_memory()


class IdleRelease:
    """Requests in flight, and the body bytes they moved since the last release."""

    def __init__(
        self, *, release: Callable[[], object] = release_idle_memory, after: int = TRANSFER
    ) -> None:
        self.release = release
        self.after = after
        self.in_flight = 0
        self.moved = 0

    def started(self) -> None:
        self.in_flight += 1

    def ended(self, moved: int) -> None:
        """A request ended, having moved `moved` bytes of request and response body."""
        self.in_flight -= 1
        self.moved += moved
        if self.in_flight == 0 and self.moved >= self.after:
            self.moved = 0
            self.release()
