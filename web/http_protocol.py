"""The HTTP/1.1 protocol `clientvault serve` runs: uvicorn's httptools protocol, which reads
no more than `MAX_REQUEST_HEAD_BYTES` of a request head.

httptools (llhttp) sets no limit of its own: a client could send megabytes of headers and
the server would hold them all. h11 has one, and `serve` ran h11 for it, at a price. With
h11 a 1 GiB `PUT` cost the server 4.3-4.6 CPU seconds and a 1 GiB download 1.7, against
3.2-3.4 and 1.2-1.3 with httptools; they ran at 81 % and 77-78 % of raw boto3, against
85-88 % and 96-98 % (`python -m bench.api --rounds 1 --documents 0 --list-requests 1`, two
runs of each, alternating, against one RGW; docs/benchmarks.md).

Bytes read while a head is incomplete are counted before the parser sees them; one past
the limit answers 431 (RFC 6585 §5) and closes the connection. A head that ends inside a
read is exact: only the bytes up to the limit are parsed first. A head pipelined behind a
request in the same read is parsed with that read (at most one read, 256 KiB, beyond
the limit in memory), and refused by the size of what it parsed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from web.headers import MAX_REQUEST_HEAD_BYTES

_REASON = b"Request Header Fields Too Large"
_REFUSAL = (
    b"HTTP/1.1 431 %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
) % (_REASON, len(_REASON), _REASON)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing, and uvicorn answers the
    parser's error with `send_400_response`."""


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes belong to a request head
        self._head_read = 0  # bytes of it read so far
        self._head_parsed = 0  # bytes of its URL and headers the parser has handed over
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = MAX_REQUEST_HEAD_BYTES - self._head_read
        if len(data) <= room:
            self._head_read += len(data)
            super().data_received(data)
            return
        # Parse only what fits: the head may end there, and the rest is its body.
        self._head_read = MAX_REQUEST_HEAD_BYTES
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse()
            return
        super().data_received(data[room:])

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self.transport.write(_REFUSAL)
        self.transport.close()

    def _parsed(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > MAX_REQUEST_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head_read, self._head_parsed = True, 0, 0
        super().on_message_complete()
