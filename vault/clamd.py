"""A small client of ClamAV's daemon: INSTREAM over its unix or TCP socket (clamd(8)).

Bytes go to the daemon as they come, in length-prefixed chunks, so a scan needs no file
and holds at most one chunk in memory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass

import anyio
import anyio.abc

from vault.errors import ScannerUnavailableError

logger = logging.getLogger(__name__)

# clamd refuses a chunk larger than its StreamMaxLength; keep each one well below it.
_CHUNK = 256 * 1024
_REPLY_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the scanner found: nothing (`signature` None), or the signature's name."""

    signature: str | None = None

    @property
    def clean(self) -> bool:
        return self.signature is None


class ClamdScanner:
    """Scans byte streams with a running clamd.

    Args:
        socket_path: clamd's LocalSocket; when empty, `host` and `port` (its TCPSocket).
        timeout: Seconds any one step (connect, send, the verdict) may take.
    """

    def __init__(
        self, *, socket_path: str = "", host: str = "", port: int = 3310, timeout: float = 120
    ) -> None:
        if not socket_path and not host:
            raise ValueError("clamd needs a socket path or a host")
        self.socket_path = socket_path
        self.host = host
        self.port = port
        self.timeout = timeout

    async def _connect(self) -> anyio.abc.SocketStream:
        try:
            with anyio.fail_after(self.timeout):
                if self.socket_path:
                    return await anyio.connect_unix(self.socket_path)
                return await anyio.connect_tcp(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ScannerUnavailableError(f"clamd is not reachable: {exc}") from exc

    async def ping(self) -> bool:
        """Whether clamd answers."""
        try:
            stream = await self._connect()
        except ScannerUnavailableError:
            return False
        async with stream:
            try:
                with anyio.fail_after(self.timeout):
                    await stream.send(b"zPING\0")
                    return await _reply(stream) == "PONG"
            except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream):
                return False

    async def scan(self, chunks: AsyncIterable[bytes | memoryview]) -> Verdict:
        """Stream `chunks` to clamd and return its verdict.

        Raises:
            ScannerUnavailableError: clamd is down, timed out, or answered with an error
                (e.g. the stream exceeded its StreamMaxLength).
        """
        stream = await self._connect()
        async with stream:
            try:
                await self._send(stream, chunks)
                with anyio.fail_after(self.timeout):
                    answer = await _reply(stream)
            except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                raise ScannerUnavailableError(f"clamd gave no verdict: {exc!r}") from exc
        return _verdict(answer)

    async def _send(
        self, stream: anyio.abc.SocketStream, chunks: AsyncIterable[bytes | memoryview]
    ) -> None:
        with anyio.fail_after(self.timeout):
            await stream.send(b"zINSTREAM\0")
        async for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), _CHUNK):
                piece = view[start : start + _CHUNK]
                with anyio.fail_after(self.timeout):
                    await stream.send(len(piece).to_bytes(4, "big") + piece)
        with anyio.fail_after(self.timeout):
            await stream.send(b"\0\0\0\0")


async def _reply(stream: anyio.abc.SocketStream) -> str:
    """One NUL-terminated answer (the `z` command prefix asks for NUL terminators)."""
    received = b""
    while not received.endswith(b"\0"):
        received += await stream.receive(_REPLY_LIMIT)
        if len(received) > _REPLY_LIMIT:
            raise ScannerUnavailableError("clamd's answer is too long")
    return received[:-1].decode("utf-8", "replace").strip()


def _verdict(answer: str) -> Verdict:
    # "stream: OK", "stream: Eicar-Test-Signature FOUND", or "... ERROR".
    _, _, result = answer.partition(": ")
    if result == "OK":
        return Verdict()
    if result.endswith(" FOUND"):
        return Verdict(signature=result.removesuffix(" FOUND").strip()[:200] or "unknown")
    raise ScannerUnavailableError(f"clamd could not scan the stream: {answer[:200]}")
