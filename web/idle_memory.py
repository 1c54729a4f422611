"""Memory back to the system whenever the process falls idle after a transfer.

A large transfer leaves megabytes free inside the allocator's heaps (its thread's arena
above all), which the process would go on holding at rest and carry into the next
transfer: measured, a server on S3 went from 120 to 124–129 MiB at rest over a few uploads
and downloads, and `malloc_trim(0)` took it back to 122. So when the last request in
flight ends, and requests have moved at least `after` bytes of bodies since the last
time, the free pages go back (`web.malloc.release_free_memory`): a few milliseconds at a
moment when no request is waiting, and never for a run of small requests.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.malloc import release_free_memory

TRANSFER = 8 << 20


class ReleaseMemoryWhenIdle:
    """A pure ASGI middleware: once no HTTP request is in flight and at least `after` bytes
    of request and response bodies have gone through since the last time, `release`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        release: Callable[[], object] = release_free_memory,
        after: int = TRANSFER,
    ) -> None:
        self.app = app
        self.release = release
        self.after = after
        self.in_flight = 0
        self.moved = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_receive() -> Message:
            message = await receive()
            self.moved += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            self.moved += len(message.get("body", b""))
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.moved >= self.after:
                self.moved = 0
                self.release()
