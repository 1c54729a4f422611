"""tus 1.0.0 for visitors of an upload-request link, at /s/{token}/uploads: the same
implementation as /api/v1/uploads (`web.api.uploads`), bound to the link.

The link decides everything the metadata decides for a signed-in caller: the folder (no
`folder_id` is read), the limits (checked before any byte is accepted), and whether the
file is held for a scan (the client's `scan_drops` policy, or `[scan].all_uploads`). An
upload continues only through the link that created it. Answers never name the document:
a visitor can list and download nothing, not even what they sent.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from vault import drops, link_access, link_policy, link_visits, links, quarantine
from vault.audit import AuditContext
from vault.db import transaction
from vault.errors import (
    InvalidDropError,
    InvalidNameError,
    LinkFullError,
    LinkNotFoundError,
    NotFoundError,
    QuotaExceededError,
    TooLargeError,
)
from vault.links import Link, LinkRef
from vault.policy import SYSTEM
from vault.uploads import Upload
from web.api import uploads as tus
from web.api.links import link_defaults
from web.context import client_ip, services
from web.errors import ProblemError
from web.observe import request_id_of
from web.tus_binding import TusCall, metadata_text


@dataclass(frozen=True, slots=True)
class LinkCall(TusCall):
    link: Link | None = None


def visitor_context(request: Request) -> AuditContext:
    return AuditContext(
        actor_role=links.VISITOR,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_of(request.scope),
    )


async def unlocked(session: AsyncSession, request: Request, link: Link) -> bool:
    """Whether the browser has given what the link asks (password, emailed code): the
    grant cookie set by the link's own page, bound to this one link."""
    # Imported here: the share pages import this module's neighbours at import time.
    from web.pages.share import GRANT_COOKIE

    return not await link_access.missing(session, link, request.cookies.get(GRANT_COOKIE))


async def refused(request: Request, exc: LinkNotFoundError) -> None:
    """Audit a refused attempt on a known link (an unknown token names no link), in a
    transaction of its own: the request's rolled back with the error."""
    if exc.link is not None:
        await refused_because(request, exc.link, exc.reason)


async def refused_because(request: Request, link: LinkRef, reason: str) -> None:
    """`link.refused` with `reason`, in a transaction of its own (see `refused`)."""
    async with transaction(services(request).sessions) as session:
        await link_visits.record_refusal(session, visitor_context(request), link, reason)


def refusal_reason(exc: BaseException) -> str | None:
    """Why a usable link refused a file (413, 422), for `link.refused`; None for an error
    that is no refusal of the visitor's file (a bad request, a store outage)."""
    if isinstance(exc, LinkFullError):
        return exc.reason
    if isinstance(exc, TooLargeError) or (isinstance(exc, ProblemError) and exc.status == 413):
        return "too_large"  # larger than the portal takes at all
    if isinstance(exc, InvalidDropError):
        return "bad_metadata"  # the visitor's name or email
    if isinstance(exc, InvalidNameError):
        return "bad_name"
    if isinstance(exc, QuotaExceededError):
        return "quota"
    return None


async def dropped(
    link_id: uuid.UUID,
    context: AuditContext,
    session: AsyncSession,
    upload_id: uuid.UUID,
    committed: quarantine.Committed,
) -> None:
    """`link.dropped`, with the version: the notifier tells the client's staff (batched)."""
    await drops.record_dropped(session, context, link_id, upload_id, committed)


class LinkBinding:
    @asynccontextmanager
    async def call(self, request: Request) -> AsyncIterator[TusCall]:
        svc = services(request)
        defaults = link_defaults(svc.settings)
        opened: LinkRef | None = None
        try:
            async with transaction(svc.sessions) as session:
                link = await drops.open_link(
                    session,
                    request.path_params["token"],
                    defaults=defaults,
                    continuing=request.method != "POST",
                )
                if not await unlocked(session, request, link):
                    raise LinkNotFoundError("locked", link)
                lender = await drops.lender(session, link)
                opened = links.ref(link)
                policy = await link_policy.effective(session, defaults, link.client_id)
                hold = policy.scan_drops or svc.settings.scan.all_uploads
                context = visitor_context(request)
                yield LinkCall(
                    session,
                    lender,
                    context,
                    SYSTEM,
                    hold,
                    reveal=False,
                    new_documents=True,
                    on_commit=partial(dropped, link.id, context),
                    link=link,
                )
        except LinkNotFoundError as exc:
            await refused(request, exc)
            raise
        except Exception as exc:
            reason = refusal_reason(exc)
            if opened is not None and reason is not None:
                await refused_because(request, opened, reason)
            raise

    def location(self, request: Request, upload_id: uuid.UUID) -> str:
        return f"/s/{request.path_params['token']}/uploads/{upload_id}"

    async def folder_for(self, call: TusCall, pairs: dict[str, bytes]) -> uuid.UUID:
        link = _link(call)
        assert link.folder_id is not None  # upload links lead into a folder
        # Checked now, before the upload exists: a bad name or email costs no reservation.
        drops.clean_name(metadata_text(pairs, "uploader_name"))
        drops.clean_email(metadata_text(pairs, "uploader_email"))
        return link.folder_id

    async def admit(self, call: TusCall, *, length: int) -> None:
        await drops.admit(call.session, _link(call), length=length)

    async def created(self, call: TusCall, upload: Upload, pairs: dict[str, bytes]) -> None:
        await drops.record(
            call.session,
            call.audit,
            _link(call),
            upload_id=upload.id,
            document_id=upload.document_id,
            version_id=upload.version_id,
            name=upload.name,
            length=upload.upload_length,
            uploader_name=metadata_text(pairs, "uploader_name"),
            uploader_email=metadata_text(pairs, "uploader_email"),
        )

    async def check(self, call: TusCall, upload: Upload) -> None:
        if not await drops.belongs(call.session, _link(call), upload.id):
            raise NotFoundError("upload not found")


def _link(call: TusCall) -> Link:
    assert isinstance(call, LinkCall) and call.link is not None
    return call.link


LINK = LinkBinding()


def routes() -> list[BaseRoute]:
    return [
        Route("/s/{token}/uploads", partial(tus.options, binding=LINK), methods=["OPTIONS"]),
        Route("/s/{token}/uploads", partial(tus.create, binding=LINK), methods=["POST"]),
        Route("/s/{token}/uploads/{upload_id}", partial(tus.head, binding=LINK), methods=["HEAD"]),
        Route(
            "/s/{token}/uploads/{upload_id}", partial(tus.patch, binding=LINK), methods=["PATCH"]
        ),
        Route(
            "/s/{token}/uploads/{upload_id}", partial(tus.delete, binding=LINK), methods=["DELETE"]
        ),
    ]
