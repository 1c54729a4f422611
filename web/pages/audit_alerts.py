"""The alerts pages for auditors and admins: `/audit/alerts` lists the alerts, newest first,
and `/audit/alerts/{alert_id}` shows one with the events behind it (time, person, action,
address). Anyone else finds no such page (404)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault.audit import alerts
from vault.db import transaction
from vault.errors import NotFoundError
from vault.lookalikes import shown_name
from vault.models import User
from vault.policy import Permission, allows
from web.auth import Caller
from web.context import audit_context, services
from web.ids import id_or_none, parse_id
from web.pages.common import browser_caller, page
from web.pages.render import render

__all__ = ["routes"]

LISTED = 200


def routes() -> list[BaseRoute]:
    return [
        Route("/audit/alerts", alerts_page, methods=["GET"]),
        Route("/audit/alerts/{alert_id}", alert_page, methods=["GET"]),
    ]


def _auditor(caller: Caller) -> None:
    if not allows(caller.principal, Permission.READ_AUDIT, None):
        raise NotFoundError("no such page")


async def _names(session: AsyncSession, actor_ids: Iterable[str | None]) -> dict[str, str]:
    """How each actor is named: display name (or address) as it is now."""
    # `cli`, `system`: no person
    ids = {i for i in map(id_or_none, actor_ids) if i is not None}
    if not ids:
        return {}
    rows = (await session.execute(select(User).where(col(User.id).in_(ids)))).scalars().all()
    return {str(u.id): shown_name(u.display_name, u.email, u.role) for u in rows}


@page
async def alerts_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        _auditor(caller)
        found = await alerts.list_alerts(
            session, caller.principal, audit_context(request, caller.principal), limit=LISTED
        )
        names = await _names(session, (a.actor_id for a in found))
    assert caller.browser is not None
    return render(
        request,
        "audit-alerts.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        alerts=[(a, alerts.moment(a.ts), len(json.loads(a.seqs))) for a in found],
        names=names,
    )


@page
async def alert_page(request: Request) -> Response:
    alert_id = parse_id(request.path_params["alert_id"], "alert")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        _auditor(caller)
        alert, events = await alerts.get_alert(
            session, caller.principal, audit_context(request, caller.principal), alert_id
        )
        names = await _names(session, [alert.actor_id, *(e.actor_id for e in events)])
    assert caller.browser is not None
    return render(
        request,
        "audit-alert.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        alert=alert,
        when=alerts.moment(alert.ts),
        events=[(e, alerts.moment(e.ts)) for e in events],
        names=names,
    )
