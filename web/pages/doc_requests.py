"""Document requests in the browser: staff ask for named documents, clients upload against
each item.

`/requests` lists the requests the caller may see, filtered (`web.pages.request_list`);
`/requests/new` is the staff form (`web.pages.request_new`), `/requests/templates` the
firm's reusable checklists (`web.pages.request_templates`); `/requests/{id}` shows one
request with an upload form per item for the client (a resumable upload panel with
JavaScript, see `web.tus_binding` and `web.pages.request_items`; a plain multipart form
without) and a form to attach a document already in the client's folders, and, for staff,
accept / reject forms, the due date, a reminder button and a link to edit it
(`web.pages.request_edits`). Every form works without JavaScript and answers with a redirect
back to the request (`?done=` says what happened), or with the page again and the error next
to the field that caused it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import document_requests as request_service
from vault import folders as folder_service
from vault import request_changes, request_uploads
from vault.db import transaction
from vault.errors import ConflictError, InvalidRequestError
from vault.models import Folder
from vault.policy import Permission, allows
from vault.request_changes import RemindedRecentlyError
from vault.request_tables import MAX_MESSAGE, ItemStatus
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.days import coming_day, local_today
from web.ids import parse_id
from web.pages import request_edits, request_list, request_new, request_templates
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render
from web.pages.request_common import browser_context, client_names, may_request, progress

NOTICES = frozenset(
    {
        "created",
        "uploaded",
        "scanning",
        "attached",
        "accepted",
        "rejected",
        "closed",
        "edited",
        "due",
        "reminded",
    }
)


def routes() -> list[BaseRoute]:
    return [
        Route("/requests", request_list.list_page, methods=["GET"]),
        *request_new.routes(),
        *request_templates.routes(),
        Route("/requests/{request_id}", request_page, methods=["GET"]),
        *request_edits.routes(),
        Route("/requests/{request_id}/due", change_due, methods=["POST"]),
        Route("/requests/{request_id}/remind", remind, methods=["POST"]),
        Route("/requests/{request_id}/close", close, methods=["POST"]),
        Route("/requests/{request_id}/items/{item_id}/accept", accept, methods=["POST"]),
        Route("/requests/{request_id}/items/{item_id}/reject", reject, methods=["POST"]),
    ]


# --- One request -----------------------------------------------------------------------------


async def _request_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    *,
    status: int = 200,
    reject_errors: dict[str, str] | None = None,
    upload_errors: dict[str, str] | None = None,
    due_error: str = "",
    due_value: str = "",
) -> Response:
    view = await request_service.get_request(
        session, caller.principal, request_id, context=audit_context(request, caller.principal)
    )
    r = view.request
    names = await client_names(session, [r.client_id])
    folder = await session.get(Folder, r.folder_id)
    principal = caller.principal
    is_open = r.closed_at is None
    # Clients answer requests; staff answer for them through their own uploads.
    may_upload = (
        is_open
        and allows(principal, Permission.UPLOAD, r.client_id)
        and not may_request(principal, r.client_id)
    )
    return render(
        request,
        "request.html",
        status=status,
        **browser_context(caller),
        notice=notice(request, NOTICES),
        view=view,
        req=r,
        client_name=names.get(r.client_id, ""),
        folder=folder,
        progress=progress(view),
        overdue=is_open and r.due_date < local_today(caller.user),
        is_open=is_open,
        may_answer=is_open and may_request(principal, r.client_id),
        may_upload=may_upload,
        documents=await _attachable(session, caller, r.client_id) if may_upload else [],
        waiting=await request_uploads.waiting_items(
            session, r.folder_id, [i.id for i in view.items if i.status != ItemStatus.ACCEPTED]
        ),
        reject_errors=reject_errors or {},
        upload_errors=upload_errors or {},
        max_message=MAX_MESSAGE,
        due_error=due_error,
        due_value=due_value or r.due_date.isoformat(),
        today=local_today(caller.user).isoformat(),
        may_remind=is_open
        and may_request(principal, r.client_id)
        and any(i.status in (ItemStatus.REQUESTED, ItemStatus.REJECTED) for i in view.items),
    )


@dataclass(frozen=True, slots=True)
class Attachable:
    id: uuid.UUID
    label: str


async def _attachable(
    session: AsyncSession, caller: Caller, client_id: uuid.UUID
) -> list[Attachable]:
    """The client's documents, each named with its folder path, in path order."""
    documents = await request_uploads.attachable_documents(session, caller.principal, client_id)
    paths = await folder_service.folder_paths(session, client_id)
    found = [Attachable(d.id, f"{paths.get(d.folder_id, '')} › {d.name}") for d in documents]
    return sorted(found, key=lambda a: a.label.casefold())


@page
async def request_page(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _request_page(request, session, caller, request_id)


@page
async def change_due(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    form = await read_form(request)
    value = form.get("due_date", "").strip()
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        today = local_today(caller.user)
        due, error = coming_day(value, today)
        if due is not None:
            try:
                await request_changes.change_due_date(
                    session, caller.principal, audit_context(request, caller.principal),
                    request_id, due_date=due, today=today,
                )  # fmt: skip
            except InvalidRequestError:
                error = "past"
        if error:
            # Checked for visibility first, so a hidden request still answers 404.
            await request_service.get_request(session, caller.principal, request_id)
            return await _request_page(
                request, session, caller, request_id, status=422, due_error=error,
                due_value=value,
            )  # fmt: skip
    return see_other(f"/requests/{request_id}?done=due")


@page
async def remind(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        try:
            await request_changes.remind_now(
                session, caller.principal, audit_context(request, caller.principal), request_id
            )
        except RemindedRecentlyError:
            # A double click: the first click's reminder is the one the person asked for.
            pass
        except ConflictError:
            return see_other(f"/requests/{request_id}")
    return see_other(f"/requests/{request_id}?done=reminded")


@page
async def close(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        await request_service.close_request(
            session, caller.principal, audit_context(request, caller.principal), request_id
        )
    return see_other(f"/requests/{request_id}?done=closed")


@page
async def accept(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    item_id = parse_id(request.path_params["item_id"], "item")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        await request_service.answer_item(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            request_id=request_id,
            item_id=item_id,
            status=ItemStatus.ACCEPTED,
        )
    return see_other(f"/requests/{request_id}?done=accepted#item-{item_id}")


@page
async def reject(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    item_id = parse_id(request.path_params["item_id"], "item")
    form = await read_form(request)
    reason = form.get("reason", "").replace("\r\n", "\n").strip()
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        error = "empty" if not reason else "long" if len(reason) > MAX_MESSAGE else ""
        if error:
            # Checked for visibility first, so a hidden request still answers 404.
            await request_service.get_request(session, caller.principal, request_id)
            return await _request_page(
                request,
                session,
                caller,
                request_id,
                status=422,
                reject_errors={str(item_id): error},
            )
        await request_service.answer_item(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            request_id=request_id,
            item_id=item_id,
            status=ItemStatus.REJECTED,
            reason=reason,
        )
    return see_other(f"/requests/{request_id}?done=rejected#item-{item_id}")
