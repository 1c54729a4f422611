"""Answering a document request's item from the browser: a file sent with the plain
multipart form (the no-JavaScript fallback; with JavaScript each item's panel sends files
through the resumable upload API, see `web.tus_binding`), or a document already in the
client's folders attached to it. Both answer with a redirect back to the request, or with the
request page again and the error next to the item.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import document_requests as request_service
from vault import request_uploads
from vault.db import transaction
from vault.errors import IncompleteUploadError, NotFoundError
from vault.request_tables import ItemStatus
from web.auth import CSRF_FIELD, resolve
from web.context import audit_context, services
from web.ids import parse_id
from web.multipart_upload import FormUploadError, receive_upload
from web.pages.common import Redirect, browser_caller, page, read_form, see_other
from web.pages.doc_requests import _request_page
from web.pages.render import render


def routes() -> list[BaseRoute]:
    return [
        Route("/requests/{request_id}/items/{item_id}/upload", upload, methods=["POST"]),
        Route("/requests/{request_id}/items/{item_id}/attach", attach, methods=["POST"]),
    ]


@page
async def upload(request: Request) -> Response:
    """A file for one item, streamed into the request's folder, then submitted."""
    svc = services(request)
    request_id = parse_id(request.path_params["request_id"], "request")
    item_id = parse_id(request.path_params["item_id"], "item")
    folder_id: uuid.UUID | None = None

    async def folder_for(_fields: dict[str, list[str]]) -> uuid.UUID:
        # Checked before any byte is stored: a hidden or closed request, or an accepted
        # item, takes no file. Refusing through `FormUploadError` lets the rest of the body
        # be read, so the browser gets the answer rather than a reset connection.
        nonlocal folder_id
        if folder_id is not None:
            return folder_id
        async with transaction(svc.sessions) as session:
            caller = await resolve(request, session)  # receive_upload checked its CSRF token
            if caller is None:
                raise Redirect("/login")
            try:
                view = await request_service.get_request(session, caller.principal, request_id)
            except NotFoundError:
                raise FormUploadError("not found", stored=[], rule="not_found") from None
        item = next((i for i in view.items if i.id == item_id), None)
        if item is None:
            raise FormUploadError("not found", stored=[], rule="not_found")
        if view.request.closed_at is not None or item.status == ItemStatus.ACCEPTED:
            raise FormUploadError("closed", stored=[], rule="closed", caller=caller)
        folder_id = view.request.folder_id
        return folder_id

    try:
        caller, form = await receive_upload(
            request,
            folder_for=folder_for,
            # Kept with a file held in quarantine, which is submitted once it is published.
            details=lambda _fields: {request_uploads.ITEM_DETAIL: str(item_id)},
        )
    except FormUploadError as exc:
        return await _upload_refused(request, exc, request_id, item_id)
    except IncompleteUploadError:
        return render(request, "error.html", status=400)
    if not form.files:
        async with transaction(svc.sessions) as session:
            return await _request_page(
                request,
                session,
                caller,
                request_id,
                status=422,
                upload_errors={str(item_id): "no_file"},
            )
    # Every file of the form is submitted: an item takes several documents.
    async with transaction(svc.sessions) as session:
        for stored in form.files:
            if stored.held or stored.version is None:
                continue
            await request_service.submit_item(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                request_id=request_id,
                item_id=item_id,
                document_id=stored.document_id,
                version=stored.version,
            )
    done = "uploaded" if any(not f.held for f in form.files) else "scanning"
    return see_other(f"/requests/{request_id}?done={done}#item-{item_id}")


async def _upload_refused(
    request: Request, exc: FormUploadError, request_id: uuid.UUID, item_id: uuid.UUID
) -> Response:
    if exc.rule == "not_found":
        raise NotFoundError("request not found")
    if exc.caller is None or exc.caller.browser is None:
        raise Redirect("/login")
    async with transaction(services(request).sessions) as session:
        return await _request_page(
            request,
            session,
            exc.caller,
            request_id,
            status=422,
            upload_errors={str(item_id): exc.rule or "refused"},
        )


@page
async def attach(request: Request) -> Response:
    """Submit a document already in the client's folders for one item."""
    request_id = parse_id(request.path_params["request_id"], "request")
    item_id = parse_id(request.path_params["item_id"], "item")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        view = await request_service.get_request(session, caller.principal, request_id)
        if not any(i.id == item_id for i in view.items):
            raise NotFoundError("item not found")
        if not form.get("document_id"):
            return await _request_page(
                request,
                session,
                caller,
                request_id,
                status=422,
                upload_errors={str(item_id): "no_document"},
            )
        await request_uploads.attach_existing(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            item_id=item_id,
            document_id=parse_id(form["document_id"], "document"),
        )
    return see_other(f"/requests/{request_id}?done=attached#item-{item_id}")
