"""Serving one document version's bytes: validators, `Range` (RFC 9110 §14), and the
decrypting stream. The API's `/documents/{id}/content` and a share link's downloads both
answer through here, so a visitor gets exactly the ranges, ETags and integrity handling
that signed-in users get."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vault import audit, crypto, documents
from vault.crypto import blobs
from vault.db import transaction
from vault.errors import IntegrityError
from vault.models import Document, Version
from web.http import (
    RangeFull,
    RangeUnsatisfiable,
    content_range,
    etag_for,
    if_none_match_matches,
    if_range_matches,
    parse_range,
)
from web.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Slice:
    """The part of a version a GET will send: [start, end) with its status and headers."""

    start: int
    end: int
    status: int
    headers: dict[str, str]

    @property
    def range(self) -> str | None:
        """The range as the audit log records it, or None for the whole body."""
        return None if self.status == 200 else f"{self.start}-{self.end - 1}"


def plan(request: Request, version: Version, headers: dict[str, str]) -> Response | Slice:
    """What to send of `version`: a 304 or a 416 answered at once, or the slice to stream.

    `headers` are the caller's (disposition, policy) and go on every answer.
    """
    etag = etag_for(str(version.id), version.sha256)
    base = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, no-store", **headers}
    if if_none_match_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=base)
    wanted = parse_range(request.headers.get("range"), version.size)
    if_range = request.headers.get("if-range")
    if if_range is not None and not if_range_matches(if_range, etag):
        wanted = RangeFull()  # RFC 9110 §13.1.5: a stale validator gets the whole body
    if isinstance(wanted, RangeUnsatisfiable):
        return Response(
            status_code=416, headers={**base, "Content-Range": f"bytes */{version.size}"}
        )
    if isinstance(wanted, RangeFull):
        start, end, status = 0, version.size, 200
    else:
        start, end, status = wanted.start, wanted.end + 1, 206
    base["Content-Length"] = str(end - start)
    if status == 206:
        base["Content-Range"] = content_range(start, end - 1, version.size)
    return Slice(start, end, status, base)


@dataclass(slots=True)
class Opening:
    """A slice's decrypting reader with its first piece already read (see `open_stream`)."""

    pieces: AsyncIterator[bytes | memoryview]
    head: list[bytes | memoryview]
    failed: IntegrityError | None = None

    async def close(self) -> None:
        """Stop the reader (its read-ahead included) when the body will not be sent."""
        aclose = getattr(self.pieces, "aclose", None)
        if aclose is not None:
            await aclose()


async def open_stream(
    svc: Services,
    version: Version,
    opened: crypto.OpenedHeader,
    part: Slice,
    *,
    read_first: bool,
) -> Opening:
    """Start reading `part`. With `read_first` (a GET) the first piece is fetched now, before
    the caller records the access and before the status line goes out: a store that is down
    or a missing object or damaged first segment is a 503/500 problem with nothing logged as
    downloaded, not a 200 cut at byte zero."""
    pieces = blobs.read_decrypted(
        svc.store,
        version.storage_key,
        opened=opened,
        object_size=version.object_size,
        start=part.start,
        end=part.end,
    )
    opening = Opening(pieces, [])
    if read_first and part.start < part.end:
        with contextlib.suppress(StopAsyncIteration):
            opening.head.append(await anext(pieces))
    return opening


def stream(
    svc: Services,
    document: Document,
    version: Version,
    opening: Opening,
    part: Slice,
    context: audit.AuditContext,
    *,
    media_type: str,
    after: Callable[[], Awaitable[None]] | None = None,
) -> StreamingResponse:
    """Stream the opened slice, decrypting as it goes; `after` runs once the last byte is
    out (e.g. a delivery receipt)."""
    ids = (document.client_id, document.id, version.number)

    async def body() -> AsyncIterator[bytes | memoryview]:
        try:
            if opening.failed is not None:
                raise opening.failed
            for piece in opening.head:
                yield piece
            async for piece in opening.pieces:
                yield piece
        except IntegrityError as exc:
            logger.error("integrity failure serving document %s v%s: %s", ids[1], ids[2], exc)
            with anyio.CancelScope(shield=True):
                async with transaction(svc.sessions) as session:
                    await documents.record_integrity_failure(
                        session, context, client_id=ids[0], document_id=ids[1], version=ids[2]
                    )
            # Re-raising aborts the response short of its Content-Length: the client sees a
            # failed transfer, never unverified bytes.
            raise
        finally:
            await opening.close()
        if after is not None:
            # The server asks for more only once the last piece was sent: the body is out.
            with anyio.CancelScope(shield=True):
                await after()

    return StreamingResponse(
        body(), status_code=part.status, headers=part.headers, media_type=media_type
    )
