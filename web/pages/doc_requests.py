"""Document requests in the browser: staff ask for named documents, clients upload against
each item.

`/requests` lists the open requests the caller may see (overdue first, then by due date);
`/requests/new` is the staff form; `/requests/{id}` shows one request with an upload form per
item for the client (a resumable upload panel with JavaScript, see `web.tus_binding`; a plain
multipart form without), a form to attach a document already in the client's folders, and
accept / reject forms for staff. Every form works without
JavaScript and answers with a redirect back to the request (`?done=` says what happened),
or with the page again and the error next to the field that caused it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import document_requests as request_service
from vault import folders as folder_service
from vault import request_uploads
from vault.audit import AuditContext
from vault.db import transaction
from vault.document_requests import RequestView
from vault.errors import InvalidRequestError, NotFoundError
from vault.models import Client, Folder
from vault.policy import Permission, Principal, allows
from vault.request_tables import MAX_ITEMS, MAX_MESSAGE, MAX_TEXT, ItemStatus, Recurrence
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.announcements import local_today
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render

NOTICES = frozenset({"created", "uploaded", "attached", "accepted", "rejected", "closed"})


def routes() -> list[BaseRoute]:
    return [
        Route("/requests", list_page, methods=["GET"]),
        Route("/requests/new", new_form, methods=["GET"]),
        Route("/requests/new", create, methods=["POST"]),
        Route("/requests/{request_id}", request_page, methods=["GET"]),
        Route("/requests/{request_id}/close", close, methods=["POST"]),
        Route("/requests/{request_id}/items/{item_id}/accept", accept, methods=["POST"]),
        Route("/requests/{request_id}/items/{item_id}/reject", reject, methods=["POST"]),
    ]


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    accepted: int
    submitted: int
    rejected: int


def progress(view: RequestView) -> Progress:
    statuses = [ItemStatus(i.status) for i in view.items]
    return Progress(
        total=len(statuses),
        accepted=statuses.count(ItemStatus.ACCEPTED),
        submitted=statuses.count(ItemStatus.SUBMITTED),
        rejected=statuses.count(ItemStatus.REJECTED),
    )


@dataclass(frozen=True, slots=True)
class Row:
    view: RequestView
    client_name: str
    overdue: bool
    progress: Progress


async def _client_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Client.id, Client.name).where(col(Client.id).in_(wanted)))
    return {uuid.UUID(str(cid)): str(name) for cid, name in rows.all()}


def _may_request(principal: Principal, client_id: uuid.UUID) -> bool:
    return allows(principal, Permission.REQUEST_DOCUMENTS, client_id)


async def _requestable_clients(
    session: AsyncSession, principal: Principal, context: AuditContext | None = None
) -> list[Client]:
    clients = await folder_service.list_clients(session, principal, context=context)
    return [c for c in clients if _may_request(principal, c.id)]


def _browser(caller: Caller) -> dict[str, Any]:
    assert caller.browser is not None
    return {"user": caller.user, "csrf_token": caller.browser.csrf_token}


# --- The list -------------------------------------------------------------------------------


@page
async def list_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        views = await request_service.list_open(
            session, caller.principal, context=audit_context(request, caller.principal)
        )
        names = await _client_names(session, (v.request.client_id for v in views))
        may_create = bool(await _requestable_clients(session, caller.principal))
    today = local_today(caller.user)
    rows = [
        Row(v, names.get(v.request.client_id, ""), v.request.due_date < today, progress(v))
        for v in views
    ]
    # Overdue first, then by due date: the earliest due date is overdue whenever any is,
    # but the order is stated here rather than left to the query.
    rows.sort(key=lambda r: (not r.overdue, r.view.request.due_date, r.view.request.created_at))
    return render(
        request,
        "requests.html",
        **_browser(caller),
        rows=rows,
        may_create=may_create,
        staff_view=caller.principal.role.value in ("staff", "admin"),
        overdue_count=sum(1 for r in rows if r.overdue),
    )


# --- Opening a request -----------------------------------------------------------------------


def _folder_paths(folders: Sequence[Folder]) -> list[tuple[uuid.UUID, str]]:
    """Every folder of a client with its path from the root, in path order."""
    by_id = {f.id: f for f in folders}

    def path(folder: Folder) -> str:
        parts = [folder.name]
        seen = {folder.id}
        parent = folder.parent_id
        while parent is not None and parent in by_id and parent not in seen:
            seen.add(parent)
            parts.append(by_id[parent].name)
            parent = by_id[parent].parent_id
        return " / ".join(reversed(parts))

    paths = [(f.id, path(f)) for f in folders]
    return sorted(paths, key=lambda p: p[1].casefold())


async def _client_folders(
    session: AsyncSession, client_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(select(Folder).where(Folder.client_id == client_id))
    return _folder_paths(rows.scalars().all())


async def _new_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    clients = await _requestable_clients(
        session, caller.principal, audit_context(request, caller.principal)
    )
    if not clients and caller.principal.role.value not in ("staff", "admin"):
        raise NotFoundError("no such page")
    chosen: Client | None = None
    if form.get("client"):
        chosen = next((c for c in clients if str(c.id) == form["client"]), None)
    elif len(clients) == 1:
        chosen = clients[0]
    folders = await _client_folders(session, chosen.id) if chosen else []
    return render(
        request,
        "request-new.html",
        status=status,
        **_browser(caller),
        clients=clients,
        chosen=chosen,
        folders=folders,
        form=form,
        errors=errors or {},
        recurrences=[r.value for r in Recurrence],
        max_text=MAX_TEXT,
        max_message=MAX_MESSAGE,
        max_items=MAX_ITEMS,
        today=local_today(caller.user).isoformat(),
    )


_EMPTY_FORM = {
    "client": "",
    "folder": "",
    "title": "",
    "message": "",
    "due_date": "",
    "recurrence": Recurrence.NONE.value,
    "items": "",
}


@page
async def new_form(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        form = dict(_EMPTY_FORM, client=request.query_params.get("client", "")[:36])
        return await _new_page(request, session, caller, form=form)


def _check_new(form: dict[str, str], today: date) -> tuple[dict[str, str], list[str], date | None]:
    """Field errors of the new-request form (codes the template words), the item names and
    the due date."""
    errors: dict[str, str] = {}
    title = " ".join(form["title"].split())
    if not title:
        errors["title"] = "empty"
    elif len(title) > MAX_TEXT:
        errors["title"] = "long"
    if len(form["message"].strip()) > MAX_MESSAGE:
        errors["message"] = "long"
    due: date | None = None
    try:
        due = date.fromisoformat(form["due_date"].strip())
    except ValueError:
        errors["due_date"] = "invalid" if form["due_date"].strip() else "empty"
    else:
        if due < today:
            errors["due_date"] = "past"
    if form["recurrence"] not in {r.value for r in Recurrence}:
        errors["recurrence"] = "invalid"
    names = [" ".join(line.split()) for line in form["items"].splitlines()]
    names = [n for n in names if n]
    if not names:
        errors["items"] = "empty"
    elif len(names) > MAX_ITEMS:
        errors["items"] = "many"
    elif any(len(n) > MAX_TEXT for n in names):
        errors["items"] = "long"
    return errors, names, due


@page
async def create(request: Request) -> Response:
    raw = await read_form(request)
    form = {name: raw.get(name, default) for name, default in _EMPTY_FORM.items()}
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=raw.get(CSRF_FIELD, ""))
        clients = {str(c.id): c for c in await _requestable_clients(session, caller.principal)}
        if not clients:
            raise NotFoundError("no such page")
        errors, names, due = _check_new(form, local_today(caller.user))
        client = clients.get(form["client"])
        if client is None and form["client"]:
            # Not a choice the form offered: another client's id, refused (and audited) as
            # that client's pages are.
            raise NotFoundError("client not found")
        if client is None:
            errors["client"] = "choose"
        else:
            folder_ids = {str(fid) for fid, _ in await _client_folders(session, client.id)}
            if form["folder"] not in folder_ids:
                errors["folder"] = "choose"
        if errors or client is None or due is None:
            return await _new_page(request, session, caller, form=form, errors=errors, status=422)
        try:
            view = await request_service.create_request(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                client_id=client.id,
                folder_id=uuid.UUID(form["folder"]),
                title=form["title"],
                message=form["message"],
                due_date=due,
                recurrence=Recurrence(form["recurrence"]),
                items=names,
            )
        except InvalidRequestError:
            # The checks above mirror the vault's; this is a backstop worded generally.
            return await _new_page(
                request, session, caller, form=form, errors={"form": "invalid"}, status=422
            )
    return see_other(f"/requests/{view.request.id}?done=created")


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
) -> Response:
    view = await request_service.get_request(
        session, caller.principal, request_id, context=audit_context(request, caller.principal)
    )
    r = view.request
    names = await _client_names(session, [r.client_id])
    folder = await session.get(Folder, r.folder_id)
    principal = caller.principal
    is_open = r.closed_at is None
    # Clients answer requests; staff answer for them through their own uploads.
    may_upload = (
        is_open
        and allows(principal, Permission.UPLOAD, r.client_id)
        and not _may_request(principal, r.client_id)
    )
    return render(
        request,
        "request.html",
        status=status,
        **_browser(caller),
        notice=notice(request, NOTICES),
        view=view,
        req=r,
        client_name=names.get(r.client_id, ""),
        folder=folder,
        progress=progress(view),
        overdue=is_open and r.due_date < local_today(caller.user),
        is_open=is_open,
        may_answer=is_open and _may_request(principal, r.client_id),
        may_upload=may_upload,
        documents=await _attachable(session, caller, r.client_id) if may_upload else [],
        reject_errors=reject_errors or {},
        upload_errors=upload_errors or {},
        max_message=MAX_MESSAGE,
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
