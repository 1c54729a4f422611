"""`/requests/{id}/edit`: staff change an open request's title and message, rename its items,
add items and remove those the client has not answered yet.

The page holds small forms (details, each item, new items) that post to one route; what a
form carries says what it changes, so no form needs more fields than the others send.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import document_requests as request_service
from vault import request_changes
from vault.db import transaction
from vault.errors import ConflictError, InvalidRequestError, NotFoundError
from vault.request_changes import removable
from vault.request_tables import MAX_ITEMS, MAX_MESSAGE, MAX_TEXT
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import browser_caller, page, read_form, see_other
from web.pages.render import render
from web.pages.request_common import browser_context, client_names, may_request


def routes() -> list[BaseRoute]:
    return [
        Route("/requests/{request_id}/edit", edit_form, methods=["GET"]),
        Route("/requests/{request_id}/edit", edit, methods=["POST"]),
    ]


async def _edit_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    *,
    form: dict[str, str] | None = None,
    error: tuple[str, str] = ("", ""),
    status: int = 200,
) -> Response:
    view = await request_service.get_request(
        session, caller.principal, request_id, context=audit_context(request, caller.principal)
    )
    r = view.request
    # Staff of the client only: anyone else may not edit it.
    if not may_request(caller.principal, r.client_id):
        raise NotFoundError("no such page")
    if r.closed_at is not None:
        # A closed request stays as it was closed; its own page says so.
        return see_other(f"/requests/{r.id}")
    names = await client_names(session, [r.client_id])
    return render(
        request,
        "request-edit.html",
        status=status,
        **browser_context(caller),
        view=view,
        req=r,
        client_name=names.get(r.client_id, ""),
        form=form or {"title": r.title, "message": r.message},
        error_part=error[0],
        error_code=error[1],
        removable={str(i.id) for i in view.items if removable(i)},
        max_text=MAX_TEXT,
        max_message=MAX_MESSAGE,
        max_items=MAX_ITEMS,
        done=request.query_params.get("done", "") == "saved",
    )


@page
async def edit_form(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _edit_page(request, session, caller, request_id)


def _lines(text: str) -> list[str]:
    return [n for n in (" ".join(line.split()) for line in text.splitlines()) if n]


def _check(part: str, form: dict[str, str]) -> str:
    """The error code of the part's fields, checked as the vault would, to word it."""
    if part == "details":
        title = " ".join(form.get("title", "").split())
        if not title:
            return "title_empty"
        if len(title) > MAX_TEXT:
            return "title_long"
        if len(form.get("message", "").strip()) > MAX_MESSAGE:
            return "message_long"
    elif part == "add":
        names = _lines(form.get("items", ""))
        if not names:
            return "items_empty"
        if any(len(n) > MAX_TEXT for n in names):
            return "items_long"
    elif part == "rename":
        name = " ".join(form.get("name", "").split())
        if not name:
            return "name_empty"
        if len(name) > MAX_TEXT:
            return "name_long"
    elif part != "remove":
        return "invalid"
    return ""


@page
async def edit(request: Request) -> Response:
    request_id = parse_id(request.path_params["request_id"], "request")
    form = await read_form(request)
    part = form.get("part", "")
    item = form.get("item", "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        code = _check(part, form)
        if not code:
            item_id = parse_id(item, "item") if part in ("rename", "remove") else None
            try:
                await request_changes.edit_request(
                    session, caller.principal, audit_context(request, caller.principal),
                    request_id,
                    title=form.get("title") if part == "details" else None,
                    message=form.get("message") if part == "details" else None,
                    add=_lines(form.get("items", "")) if part == "add" else (),
                    rename={item_id: form.get("name", "")} if item_id and part == "rename"
                    else None,
                    remove=[item_id] if item_id and part == "remove" else (),
                )  # fmt: skip
            except ConflictError:
                code = "answered"
            except InvalidRequestError:
                code = "many" if part == "add" else "last" if part == "remove" else "invalid"
        if code:
            # Checked for visibility first, so a hidden request still answers 404.
            await request_service.get_request(session, caller.principal, request_id)
            kept = {"title": form.get("title", ""), "message": form.get("message", "")}
            return await _edit_page(
                request, session, caller, request_id, status=422,
                form=kept if part == "details" else None, error=(f"{part}:{item}", code),
            )  # fmt: skip
    anchor = f"#edit-item-{item}" if part in ("rename",) else ""
    return see_other(f"/requests/{request_id}/edit?done=saved{anchor}")
