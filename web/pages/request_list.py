"""`/requests`: the requests the caller may see, in tabs Open / Closed / All with counts, and
filtered by client and due date through plain GET parameters (`state`, `client`, `due`), so
a filtered list is a link one can keep. An unknown value means no filter; another client's id
answers 404 like that client's pages."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from vault import folders as folder_service
from vault import request_lists
from vault.db import transaction
from vault.request_lists import Due, State
from web.context import audit_context, services
from web.days import local_today
from web.ids import parse_id
from web.pages.common import browser_caller, page
from web.pages.render import render
from web.pages.request_common import (
    Row,
    browser_context,
    client_names,
    progress,
    requestable_clients,
)


def _state(value: str) -> State:
    return State(value) if value in {s.value for s in State} else State.OPEN


def _due(value: str) -> Due:
    return Due(value) if value in {d.value for d in Due} else Due.ANY


@page
async def list_page(request: Request) -> Response:
    query = request.query_params
    state = _state(query.get("state", ""))
    due = _due(query.get("due", ""))
    raw_client = query.get("client", "")
    client_id: uuid.UUID | None = parse_id(raw_client, "client") if raw_client else None
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        today = local_today(caller.user)
        listing = await request_lists.list_requests(
            session, caller.principal, today=today, state=state, client_id=client_id, due=due,
            context=audit_context(request, caller.principal),
        )  # fmt: skip
        names = await client_names(session, (v.request.client_id for v in listing.views))
        clients = await folder_service.list_clients(session, caller.principal)
        may_create = bool(await requestable_clients(session, caller.principal))
    rows = [
        Row(
            v,
            names.get(v.request.client_id, ""),
            v.request.closed_at is None and v.request.due_date < today,
            progress(v),
        )
        for v in listing.views
    ]
    # Open ones overdue first, then by due date; the order is stated here rather than left
    # to the query.
    rows.sort(key=lambda r: (r.view.request.closed_at is not None, not r.overdue))
    kept = {"client": str(client_id) if client_id else "", "due": due.value}

    def link(**change: str) -> str:
        params = {"state": state.value, **kept, **change}
        return "/requests?" + urlencode({k: v for k, v in params.items() if v and v != "any"})

    return render(
        request,
        "requests.html",
        **browser_context(caller),
        rows=rows,
        may_create=may_create,
        staff_view=caller.principal.role.value in ("staff", "admin"),
        overdue_count=sum(1 for r in rows if r.overdue),
        state=state.value,
        due=due.value,
        client_id=str(client_id) if client_id else "",
        clients=sorted(clients, key=lambda c: c.name.casefold()),
        counts={s.value: n for s, n in listing.counts.items()},
        tabs=[(s.value, link(state=s.value)) for s in State],
        filtered=bool(client_id) or due is not Due.ANY,
        clear_link=link(client="", due=""),
    )
