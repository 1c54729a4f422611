"""A version's thumbnail as an image (`GET /documents/{id}/thumbnail?version=N`), and what
templates use to show one: `ThumbnailLinks.src` gives the address, or "" when there is none."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import thumbnails
from vault.db import transaction
from vault.errors import NotFoundError, ThumbnailError
from web.context import audit_context, services
from web.http import etag_for, if_none_match_matches
from web.ids import parse_id
from web.numbers import INT32_MAX, parse_int
from web.pages.common import browser_caller, page

# Nothing in an image runs, but should a browser ever render it as a document, it is a
# sandbox that loads nothing and may not be framed (ASVS 3.2.1, clickjacking).
THUMBNAIL_CSP = (
    "default-src 'none'; sandbox; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# A numbered version's thumbnail never changes; the browser keeps it (privately, never a
# shared cache) for an hour. The current version's changes with each upload: asked again
# each time, answered 304 while its ETag holds.
NUMBERED_CACHE = "private, max-age=3600"
CURRENT_CACHE = "private, no-cache"


class Listed(Protocol):
    """A document as a listing shows it (e.g. `vault.folders.ListedDocument`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ThumbnailLinks:
    """Passed to a template as `thumbs`: `thumbs.src(item)` is the address of a document's
    thumbnail (of its current version), or "" when its type or size has none or it was found
    impossible to draw; `thumbs.drawn(item)` the same, but only once it is drawn."""

    max_bytes: int
    failed: frozenset[uuid.UUID] = frozenset()  # documents whose current version failed
    # Documents whose current version's thumbnail is stored, and that version's number.
    stored: Mapping[uuid.UUID, int] = field(default_factory=dict)

    def src(self, item: Listed) -> str:
        return self.of_version(item.id, item.content_type, item.size)

    def drawn(self, item: Listed) -> str:
        """For listings: the address only of a thumbnail already drawn, so that every one
        a page shows loads (one not yet drawn, or that cannot be, leaves the icon alone).
        It names the version, so the browser keeps it for as long as it is the current."""
        number = self.stored.get(item.id)
        return "" if number is None else f"/documents/{item.id}/thumbnail?version={number}"

    def of_version(
        self, document_id: uuid.UUID, content_type: str, size: int, number: int | None = None
    ) -> str:
        """The address of one version's thumbnail (`number`), or of the current one."""
        if document_id in self.failed or not thumbnails.may_have_thumbnail(
            content_type, size, max_bytes=self.max_bytes
        ):
            return ""
        query = f"?version={number}" if number is not None else ""
        return f"/documents/{document_id}/thumbnail{query}"


async def thumbnail_links(
    request: Request, session: AsyncSession, document_ids: Sequence[uuid.UUID]
) -> ThumbnailLinks:
    """What a page passes as `thumbs` to show thumbnails of these documents."""
    return ThumbnailLinks(
        services(request).thumbnail_max_bytes,
        frozenset(await thumbnails.failed_documents(session, document_ids)),
        await thumbnails.drawn_versions(session, document_ids),
    )


@page
async def thumbnail(request: Request) -> Response:
    svc = services(request)
    document_id = parse_id(request.path_params["document_id"], "document")
    raw = request.query_params.get("version")
    number = None if raw is None else parse_int(raw, minimum=1, maximum=INT32_MAX)
    if raw is not None and number is None:
        raise NotFoundError("version not found")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session)
    principal = caller.principal
    try:
        image = await thumbnails.thumbnail(
            svc.sessions,
            svc.store,
            svc.keyring,
            principal,
            audit_context(request, principal),
            document_id=document_id,
            number=number,
            max_bytes=svc.thumbnail_max_bytes,
            part_size=svc.part_size,
            limiter=svc.thumbnail_limiter,
        )
    except ThumbnailError:
        # The caller may see the document; it simply has no thumbnail. Not a refusal, and
        # an image element needs no error page.
        return Response(status_code=404, headers={"Content-Security-Policy": THUMBNAIL_CSP})
    etag = etag_for(f"{image.version_id}/thumbnail", image.sha256)
    headers = {
        "ETag": etag,
        "Cache-Control": NUMBERED_CACHE if number is not None else CURRENT_CACHE,
        "Content-Security-Policy": THUMBNAIL_CSP,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
    }
    if if_none_match_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(image.data, media_type=image.media_type, headers=headers)


def routes() -> list[BaseRoute]:
    return [Route("/documents/{document_id}/thumbnail", thumbnail, methods=["GET"])]
