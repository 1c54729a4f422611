"""The signed-in home page, a dashboard: what changed since the last visit, the document
requests still open, the firm's announcements and the clients one can see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from vault import announcements, visits
from vault import document_requests as request_service
from vault import folders as folder_service
from vault.audit import AuditContext, alerts
from vault.db import transaction
from vault.document_requests import RequestView
from vault.models import Client, Document, Folder, Role, User
from vault.policy import Principal
from vault.request_tables import ItemStatus
from web.context import audit_context, services
from web.days import local_today
from web.pages.common import browser_caller, page
from web.pages.render import render

NEWS_LIMIT = 20
REQUESTS_LIMIT = 10
ANNOUNCEMENTS_LIMIT = 5
CLIENT_FILTER_LENGTH = 200
# Staff with more clients than this get a filter above the list.
CLIENT_FILTER_FROM = 6
_OUTSTANDING = frozenset({ItemStatus.REQUESTED, ItemStatus.REJECTED})


@dataclass(frozen=True, slots=True)
class ClientSummary:
    client: Client
    folders: int
    documents: int


async def client_summaries(
    session: AsyncSession, principal: Principal, context: AuditContext | None = None
) -> list[ClientSummary]:
    """The clients the principal can see, with how many folders and live documents each has."""
    clients = await folder_service.list_clients(session, principal, context=context)
    ids = [c.id for c in clients]
    if not ids:
        return []
    folder_rows = await session.execute(
        select(Folder.client_id, func.count())
        .where(col(Folder.client_id).in_(ids))
        .group_by(col(Folder.client_id))
    )
    document_rows = await session.execute(
        select(Document.client_id, func.count())
        .where(col(Document.client_id).in_(ids), col(Document.deleted_at).is_(None))
        .group_by(col(Document.client_id))
    )
    folders: dict[uuid.UUID, int] = {cid: int(n) for cid, n in folder_rows.all()}
    documents: dict[uuid.UUID, int] = {cid: int(n) for cid, n in document_rows.all()}
    return [ClientSummary(c, folders.get(c.id, 0), documents.get(c.id, 0)) for c in clients]


@dataclass(frozen=True, slots=True)
class OpenRequest:
    id: uuid.UUID
    title: str
    client_name: str
    due: date
    overdue: bool
    outstanding: int  # items still to be sent (requested, or rejected and to be sent again)
    submitted: int  # items waiting for staff to look at them
    items: int


@dataclass(frozen=True, slots=True)
class Requests:
    shown: list[OpenRequest]
    total: int
    overdue: int

    waiting_review: int = 0  # submitted documents staff have still to accept or reject


def _open_request(view: RequestView, names: dict[uuid.UUID, str], today: date) -> OpenRequest:
    request = view.request
    return OpenRequest(
        id=request.id,
        title=request.title,
        client_name=names.get(request.client_id, ""),
        due=request.due_date,
        overdue=request.due_date < today,
        outstanding=sum(1 for i in view.items if i.status in _OUTSTANDING),
        submitted=sum(1 for i in view.items if i.status == ItemStatus.SUBMITTED),
        items=len(view.items),
    )


async def open_requests(
    session: AsyncSession, principal: Principal, user: User, names: dict[uuid.UUID, str]
) -> Requests:
    """Open requests of the caller's clients, earliest due (so every overdue one) first."""
    if principal.role is Role.AUDITOR:
        return Requests([], 0, 0, 0)
    today = local_today(user)
    views = await request_service.list_open(session, principal)
    every = [_open_request(v, names, today) for v in views]
    return Requests(
        every[:REQUESTS_LIMIT],
        len(every),
        sum(1 for r in every if r.overdue),
        sum(r.submitted for r in every),
    )


@page
async def home(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        user = caller.user
        summaries = await client_summaries(
            session, caller.principal, audit_context(request, caller.principal)
        )
        visit = await visits.record_visit(session, user)
        news = (
            visits.News([], 0)
            if user.role == Role.AUDITOR
            else await visits.changes_since(
                session, caller.principal, visit.since, limit=NEWS_LIMIT
            )
        )
        names = {s.client.id: s.client.name for s in summaries}
        pending = await open_requests(session, caller.principal, user, names)
        notices = await announcements.current(session, limit=ANNOUNCEMENTS_LIMIT)
        # The auditor's home shows the newest alerts (an audited read of them).
        raised = (
            await alerts.list_alerts(
                session, caller.principal, audit_context(request, caller.principal), limit=5
            )
            if user.role == Role.AUDITOR
            else []
        )
        # A client user of one client lands in it: its folders come first on the page.
        own = [s for s in summaries if not s.client.shared]
        only: Client | None = own[0].client if user.role == Role.CLIENT and len(own) == 1 else None
        root_folders: list[Folder] = []
        if only is not None:
            found, _ = await folder_service.children(session, client_id=only.id, folder_id=None)
            root_folders = list(found)
    query = request.query_params.get("q", "").strip()[:CLIENT_FILTER_LENGTH]
    shown = [s for s in summaries if query.casefold() in s.client.name.casefold()]
    assert caller.browser is not None
    return render(
        request,
        "home.html",
        user=user,
        csrf_token=caller.browser.csrf_token,
        clients=shown,
        client_count=len(summaries),
        client_query=query,
        only_client=only,
        root_folders=root_folders,
        visit=visit,
        news=news,
        requests=pending,
        announcements=notices,
        several_clients=len(summaries) > 1,
        alerts=raised,
        client_filter=user.role != Role.CLIENT and len(summaries) > CLIENT_FILTER_FROM,
    )
