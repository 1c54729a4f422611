"""Announcements and the firm's shared resources.

Everyone signed in reads the current announcements and finds the shared resources (the
clients marked `shared`); staff and admins post and withdraw announcements.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import announcements, resources
from vault.db import transaction
from vault.errors import InvalidAnnouncementError, NotFoundError
from vault.policy import is_firm
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.days import coming_day, end_of_day, local_today
from web.ids import parse_id
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render

NOTICES = frozenset({"posted", "withdrawn"})


def routes() -> list[BaseRoute]:
    return [
        Route("/announcements", announcements_page, methods=["GET"]),
        Route("/announcements", post_announcement, methods=["POST"]),
        Route("/announcements/{announcement_id}/withdraw", withdraw, methods=["POST"]),
    ]


async def _page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    assert caller.browser is not None
    return render(
        request,
        "announcements.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        notice=notice(request, NOTICES),
        announcements=await announcements.current(
            session, context=audit_context(request, caller.principal)
        ),
        resources=await resources.shared_clients(session, caller.principal),
        may_post=is_firm(caller.principal),
        errors=errors or {},
        form=form or {"title": "", "body": "", "expires": ""},
        max_title=announcements.MAX_TITLE,
        max_body=announcements.MAX_BODY,
        today=local_today(caller.user).isoformat(),
    )


@page
async def announcements_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _page(request, session, caller)


@page
async def post_announcement(request: Request) -> Response:
    form = await read_form(request)
    values = {name: form.get(name, "") for name in ("title", "body", "expires")}
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        if not is_firm(caller.principal):
            raise NotFoundError("no such page")
        errors: dict[str, str] = {}
        expires_at: datetime | None = None
        if values["expires"].strip():
            day, error = coming_day(values["expires"], local_today(caller.user))
            if day is None:
                errors["expires"] = error
            else:
                expires_at = end_of_day(caller.user, day)
        for name, clean in (
            ("title", announcements.clean_title),
            ("body", announcements.clean_body),
        ):
            try:
                clean(values[name])
            except InvalidAnnouncementError as exc:
                errors[name] = exc.code
        if not errors:
            try:
                await announcements.post(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    title=values["title"],
                    body=values["body"],
                    expires_at=expires_at,
                )
            except InvalidAnnouncementError as exc:
                errors[exc.field] = exc.code
        if errors:
            return await _page(request, session, caller, status=422, errors=errors, form=values)
    return see_other("/announcements?done=posted")


@page
async def withdraw(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        if not is_firm(caller.principal):
            raise NotFoundError("no such page")
        announcement_id = parse_id(request.path_params["announcement_id"], "announcement")
        await announcements.withdraw(
            session, caller.principal, audit_context(request, caller.principal), announcement_id
        )
    return see_other("/announcements?done=withdrawn")
