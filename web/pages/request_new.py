"""`/requests/new`: the staff form that opens a request, which may start from one of the
firm's templates (`?template=`) and may save what it holds as a new template."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import document_requests as request_service
from vault import request_templates as template_service
from vault.db import transaction
from vault.errors import ConflictError, InvalidRequestError, NotFoundError
from vault.models import Client
from vault.request_tables import MAX_ITEMS, MAX_MESSAGE, MAX_TEXT, Recurrence
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.days import coming_day, local_today
from web.ids import parse_id
from web.pages.common import browser_caller, page, read_form, see_other
from web.pages.render import render
from web.pages.request_common import browser_context, client_folders, requestable_clients


def routes() -> list[BaseRoute]:
    return [
        Route("/requests/new", new_form, methods=["GET"]),
        Route("/requests/new", create, methods=["POST"]),
    ]


async def _new_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    saved: str = "",
) -> Response:
    clients = await requestable_clients(
        session, caller.principal, audit_context(request, caller.principal)
    )
    if not clients and caller.principal.role.value not in ("staff", "admin"):
        raise NotFoundError("no such page")
    chosen: Client | None = None
    if form.get("client"):
        chosen = next((c for c in clients if str(c.id) == form["client"]), None)
    elif len(clients) == 1:
        chosen = clients[0]
    folders = await client_folders(session, chosen.id) if chosen else []
    templates = (
        await template_service.list_templates(
            session, caller.principal, audit_context(request, caller.principal)
        )
        if caller.principal.role.value in ("staff", "admin")
        else []
    )
    return render(
        request,
        "request-new.html",
        status=status,
        **browser_context(caller),
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
        templates=templates,
        saved=saved,
    )


_EMPTY_FORM = {
    "client": "",
    "folder": "",
    "title": "",
    "message": "",
    "due_date": "",
    "recurrence": Recurrence.NONE.value,
    "items": "",
    "template": "",
    "template_name": "",
}


@page
async def new_form(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        form = dict(_EMPTY_FORM, client=request.query_params.get("client", "")[:36])
        if raw_template := request.query_params.get("template", ""):
            template = await template_service.get_template(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                parse_id(raw_template, "template"),
            )
            due = template_service.due_date_from(template, local_today(caller.user))
            form.update(
                template=str(template.id),
                title=template.title,
                message=template.message,
                items="\n".join(template.item_names),
                due_date=due.isoformat() if due else "",
            )
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
    due, error = coming_day(form["due_date"], today)
    if error:
        errors["due_date"] = error
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
        clients = {str(c.id): c for c in await requestable_clients(session, caller.principal)}
        if not clients:
            raise NotFoundError("no such page")
        today = local_today(caller.user)
        errors, names, due = _check_new(form, today)
        if raw.get("action") == "save_template":
            return await _save_template(request, session, caller, form, errors, names, due, today)
        client = clients.get(form["client"])
        if client is None and form["client"]:
            # Not a choice the form offered: another client's id, refused (and audited) as
            # that client's pages are.
            raise NotFoundError("client not found")
        if client is None:
            errors["client"] = "choose"
        else:
            folder_ids = {str(fid) for fid, _ in await client_folders(session, client.id)}
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


async def _save_template(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    form: dict[str, str],
    errors: dict[str, str],
    names: list[str],
    due: date | None,
    today: date,
) -> Response:
    """ "Save as template": the title, message, items and how far off the due date is, kept
    under a name for any client; the form comes back as it was, to be sent or not."""
    # The client, folder and recurrence belong to this one request, not to the template.
    wanted = {k: v for k, v in errors.items() if k in ("title", "message", "items")}
    name = " ".join(form["template_name"].split())
    if not name:
        wanted["template_name"] = "empty"
    elif len(name) > MAX_TEXT:
        wanted["template_name"] = "long"
    if not wanted:
        try:
            await template_service.create_template(
                session, caller.principal, audit_context(request, caller.principal),
                name=name, title=form["title"], message=form["message"], items=names,
                due_in_days=(due - today).days if due and due >= today else None,
            )  # fmt: skip
        except ConflictError:
            wanted["template_name"] = "taken"
        except InvalidRequestError:
            wanted["form"] = "invalid"
    if wanted:
        return await _new_page(request, session, caller, form=form, errors=wanted, status=422)
    return await _new_page(request, session, caller, form=form, saved=name)
