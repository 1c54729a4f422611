"""`/requests/templates`: the firm's request templates, reusable for any client. Staff and
administrators list, create, change and delete them; anyone else gets 404, as the vault
says. A template is used from the new-request form (`/requests/new?template=`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import request_templates as template_service
from vault.db import transaction
from vault.errors import ConflictError, InvalidRequestError
from vault.request_tables import MAX_DUE_IN_DAYS, MAX_ITEMS, MAX_MESSAGE, MAX_TEXT
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render
from web.pages.request_common import browser_context

NOTICES = frozenset({"created", "saved", "deleted"})
_FIELDS = ("name", "title", "message", "items", "due_in_days")


def routes() -> list[BaseRoute]:
    return [
        Route("/requests/templates", list_page, methods=["GET"]),
        Route("/requests/templates", create, methods=["POST"]),
        Route("/requests/templates/{template_id}", edit_form, methods=["GET"]),
        Route("/requests/templates/{template_id}", update, methods=["POST"]),
        Route("/requests/templates/{template_id}/delete", delete, methods=["POST"]),
    ]


async def _page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    editing: uuid.UUID | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    context = audit_context(request, caller.principal)
    templates = await template_service.list_templates(session, caller.principal, context)
    template = None
    if editing is not None:
        template = await template_service.get_template(session, caller.principal, context, editing)
        form = form or {
            "name": template.name,
            "title": template.title,
            "message": template.message,
            "items": "\n".join(template.item_names),
            "due_in_days": "" if template.due_in_days is None else str(template.due_in_days),
        }
    return render(
        request,
        "request-templates.html",
        status=status,
        **browser_context(caller),
        templates=templates,
        editing=template,
        form=form or dict.fromkeys(_FIELDS, ""),
        errors=errors or {},
        notice=notice(request, NOTICES),
        max_text=MAX_TEXT,
        max_message=MAX_MESSAGE,
        max_items=MAX_ITEMS,
        max_days=MAX_DUE_IN_DAYS,
    )


@page
async def list_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _page(request, session, caller)


@page
async def edit_form(request: Request) -> Response:
    template_id = parse_id(request.path_params["template_id"], "template")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _page(request, session, caller, editing=template_id)


def _check(form: dict[str, str]) -> tuple[dict[str, str], list[str], int | None]:
    """Field errors (codes the template words), the item names and the due-in days."""
    errors: dict[str, str] = {}
    for field in ("name", "title"):
        text = " ".join(form[field].split())
        if not text:
            errors[field] = "empty"
        elif len(text) > MAX_TEXT:
            errors[field] = "long"
    if len(form["message"].strip()) > MAX_MESSAGE:
        errors["message"] = "long"
    names = [n for n in (" ".join(line.split()) for line in form["items"].splitlines()) if n]
    if not names:
        errors["items"] = "empty"
    elif len(names) > MAX_ITEMS:
        errors["items"] = "many"
    elif any(len(n) > MAX_TEXT for n in names):
        errors["items"] = "long"
    days: int | None = None
    if raw := form["due_in_days"].strip():
        if not raw.isdigit() or int(raw) > MAX_DUE_IN_DAYS:
            errors["due_in_days"] = "invalid"
        else:
            days = int(raw)
    return errors, names, days


async def _save(request: Request, template_id: uuid.UUID | None) -> Response:
    raw = await read_form(request)
    form = {f: raw.get(f, "") for f in _FIELDS}
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=raw.get(CSRF_FIELD, ""))
        errors, names, days = _check(form)
        if not errors:
            context = audit_context(request, caller.principal)
            fields = {"name": form["name"], "title": form["title"], "message": form["message"]}
            try:
                if template_id is None:
                    await template_service.create_template(
                        session, caller.principal, context, **fields, items=names,
                        due_in_days=days,
                    )  # fmt: skip
                else:
                    await template_service.update_template(
                        session, caller.principal, context, template_id, **fields,
                        items=names, due_in_days=days,
                    )  # fmt: skip
            except ConflictError:
                errors["name"] = "taken"
            except InvalidRequestError:
                errors["form"] = "invalid"
        if errors:
            return await _page(
                request, session, caller, editing=template_id, form=form, errors=errors,
                status=422,
            )  # fmt: skip
    return see_other("/requests/templates?done=" + ("created" if template_id is None else "saved"))


@page
async def create(request: Request) -> Response:
    return await _save(request, None)


@page
async def update(request: Request) -> Response:
    return await _save(request, parse_id(request.path_params["template_id"], "template"))


@page
async def delete(request: Request) -> Response:
    template_id = parse_id(request.path_params["template_id"], "template")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        await template_service.delete_template(
            session, caller.principal, audit_context(request, caller.principal), template_id
        )
    return see_other("/requests/templates?done=deleted")
