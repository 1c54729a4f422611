"""The document page: its versions, a preview, restoring an old version, delivery receipts,
and moving the document to the trash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from vault import documents as doc_service
from vault import filing, quarantine, quotas, receipts
from vault import folders as folder_service
from vault.db import transaction
from vault.errors import NotFoundError
from vault.lookalikes import shown_name
from vault.models import Client, Document, Folder, User
from vault.policy import Permission, allows
from web.api.documents import PREVIEWABLE
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id
from web.numbers import INT32_MAX, parse_int
from web.pages import link_pages
from web.pages import quarantine as held_pages
from web.pages.browse_listing import FilingError
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render
from web.pages.thumbnails import thumbnail_links

DOCUMENT_NOTICES = frozenset({"restored", "renamed", "moved"})
# Larger previews are offered as a link rather than loaded with the page.
EMBED_LIMIT = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class VersionRow:
    number: int
    size: int
    created_at: datetime
    uploaded_by: str
    sha256: str
    content_type: str
    download: str
    preview: str  # "" when the type is not shown inline
    received: list[tuple[receipts.Member, datetime]]
    waiting: list[receipts.Member]


def _digits(raw: str) -> str:
    # A link may say which version was made, but cannot put other words on the page.
    return raw if parse_int(raw, maximum=INT32_MAX) is not None else ""


def preview_kind(content_type: str) -> str:
    if content_type not in PREVIEWABLE:
        return ""
    if content_type.startswith("image/"):
        return "image"
    return "pdf" if content_type == "application/pdf" else "text"


@page
async def document_page(request: Request) -> Response:
    document_id = parse_id(request.path_params["document_id"], "document")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        document = await doc_service.get_document(session, caller.principal, document_id)
        return await show_document(request, session, caller, document)


async def show_document(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    document: Document,
    *,
    status: int = 200,
    problem: FilingError | None = None,
) -> Response:
    """The document page, or the page again with why its rename or move was refused."""
    assert caller.browser is not None
    principal = caller.principal
    folder = await session.get_one(Folder, document.folder_id)
    client = await session.get_one(Client, document.client_id)
    chain = await folder_service.ancestors(session, folder)
    versions = list(await doc_service.versions(session, document.id))
    uploader_ids = {v.uploaded_by for v in versions if v.uploaded_by}
    people: dict[uuid.UUID, str] = {}
    if uploader_ids:
        for user in (
            await session.execute(select(User).where(col(User.id).in_(uploader_ids)))
        ).scalars():
            people[user.id] = shown_name(user.display_name, user.email, user.role)
    can_manage = doc_service.may_manage(principal, client.id)
    by_number = (
        {r.number: r for r in await receipts.receipts(session, principal, document)}
        if can_manage
        else {}
    )
    base = f"/api/v1/documents/{document.id}/content?version="
    rows = []
    for version in reversed(versions):
        got = by_number.get(version.number)
        rows.append(
            VersionRow(
                version.number,
                version.size,
                version.created_at,
                people.get(version.uploaded_by, "") if version.uploaded_by else "",
                version.sha256,
                version.content_type,
                f"{base}{version.number}",
                f"{base}{version.number}&disposition=inline"
                if preview_kind(version.content_type)
                else "",
                got.received if got else [],
                got.waiting if got else [],
            )
        )
    await doc_service.record_view(session, audit_context(request, principal), document)
    current = rows[0] if rows else None
    can_file = allows(principal, Permission.DELETE, client.id)
    thumbs = await thumbnail_links(request, session, [document.id])
    return render(
        request,
        "document.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        document=document,
        folder=folder,
        client=client,
        crumbs=[(client.name, f"/clients/{client.id}")]
        + [(f.name, f"/folders/{f.id}") for f in chain],
        versions=rows,
        current=current,
        preview=preview_kind(current.content_type) if current else "",
        embed=current is not None and current.size <= EMBED_LIMIT,
        thumbnail=thumbs.of_version(document.id, current.content_type, current.size, current.number)
        if current
        else "",
        notice=notice(request, DOCUMENT_NOTICES),
        restored_to=_digits(request.query_params.get("version", "")),
        can_download=allows(principal, Permission.DOWNLOAD, client.id),
        can_restore=allows(principal, Permission.UPLOAD, client.id)
        and allows(principal, Permission.DOWNLOAD, client.id),
        can_delete=allows(principal, Permission.DELETE, client.id),
        can_manage=can_manage,
        held=await held_pages.held_rows(session, principal, document=document),
        # Which versions passed a scan, and which were released unscanned (staff only).
        scans=await quarantine.scan_states(session, document.id) if can_manage else {},
        share_panel=await link_pages.panel(
            session, principal, services(request), document=document
        ),
        can_file=can_file,
        move_choices=await filing.folder_choices(session, client.id) if can_file else [],
        problem=problem,
    )


@page
async def restore_version(request: Request) -> Response:
    svc = services(request)
    document_id = parse_id(request.path_params["document_id"], "document")
    form = await read_form(request)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        # Not Starlette's `:int` convertor: its int() raises on 5,000 digits (a 500 from the
        # router) and takes numbers past the 32-bit column.
        number = parse_int(request.path_params["number"], minimum=1, maximum=INT32_MAX)
        if number is None:
            raise NotFoundError("version not found")
        principal, context = caller.principal, audit_context(request, caller.principal)
        default = svc.settings.quotas.default_bytes
        client_id, admission = await quotas.admit_copy(
            session, principal, document_id, number, default=default
        )
    try:
        document, version = await doc_service.restore_version(
            svc.sessions,
            svc.store,
            svc.keyring,
            principal,
            context,
            document_id=document_id,
            number=number,
            part_size=svc.part_size,
            concurrency=svc.settings.storage.concurrency,
        )
    finally:
        with anyio.CancelScope(shield=True):
            await quotas.release_in(svc.sessions, admission)
    async with transaction(svc.sessions) as session:
        await quotas.note_usage(session, client_id, default=default)
    return see_other(f"/documents/{document.id}?done=restored&version={version.number}")


@page
async def trash_document(request: Request) -> Response:
    document_id = parse_id(request.path_params["document_id"], "document")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        document = await doc_service.trash(
            session, caller.principal, audit_context(request, caller.principal), document_id
        )
        folder_id = document.folder_id
    return see_other(f"/folders/{folder_id}?done=trashed")
