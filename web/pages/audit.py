"""The auditor's pages: search the log, a document's access history, a person's timeline.

Auditors and admins only; for anyone else they do not exist (404). Each page is a keyset
page of `vault.audit.query` (newest first, `before` = the last seq shown), so the hundredth
page costs what the first does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault.audit import query as aq
from vault.audit import views as audit_views
from vault.audit.actions import FAMILIES
from vault.db import transaction
from vault.errors import AuditQueryError
from vault.models import User
from web import audit_sentences
from web.context import audit_context, services
from web.ids import id_or_none, parse_id
from web.numbers import INT64_MAX, parse_int
from web.pages import audit_report
from web.pages.audit_report import day_bounds
from web.pages.common import browser_caller, page
from web.pages.render import page_language, render

OUTCOMES = ("success", "denied", "failure", "error", "locked")
FIELDS = ("client", "person", "document", "group", "outcome", "ip", "since", "until")


def routes() -> list[BaseRoute]:
    return [
        Route("/audit", search, methods=["GET"]),
        Route("/audit/documents/{document_id}", document_history, methods=["GET"]),
        Route("/audit/people/{user_id}", person_timeline, methods=["GET"]),
        *audit_report.routes(),
    ]


@dataclass(frozen=True, slots=True)
class Row:
    """One event as a page shows it."""

    seq: int
    at: datetime
    sentence: str
    actor_id: str | None
    actor_email: str | None
    document_id: str | None
    origin: str
    outcome: str
    current_labels: bool


def moment(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def rows(shown: list[audit_views.Shown], lang: str) -> list[Row]:
    return [
        Row(
            seq=s.event.seq,
            at=moment(s.event.ts),
            sentence=audit_sentences.sentence(s.event, s.labels, lang, html=True, with_ip=False),
            actor_id=s.event.actor_id,
            actor_email=s.labels.get("actor_email"),
            document_id=s.event.document_id,
            origin=audit_sentences.origin(s.event.ip, lang) if s.event.ip else "",
            outcome=s.event.outcome,
            current_labels=s.labels.get("labels_from") == "current",
        )
        for s in shown
    ]


def cursor(request: Request) -> int | None:
    return parse_int(request.query_params.get("before", ""), maximum=INT64_MAX)


@dataclass
class Form:
    """The search form as typed, echoed back on the page."""

    client: str = ""
    person: str = ""
    document: str = ""
    group: str = ""
    outcome: str = ""
    ip: str = ""
    since: str = ""
    until: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, request: Request) -> Form:
        q = request.query_params
        form = cls()
        for name in FIELDS:
            setattr(form, name, q.get(name, "").strip()[:200])
        if form.group not in FAMILIES:
            form.group = ""
        if form.outcome not in OUTCOMES:
            form.outcome = ""
        return form

    def query(self, before: int | None) -> str:
        values = {k: str(getattr(self, k)) for k in FIELDS if getattr(self, k)}
        if before is not None:
            values["before"] = str(before)
        return urlencode(values)


@page
async def search(request: Request) -> Response:
    form = Form.read(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        principal = caller.principal
        clients = await audit_views.clients(session, principal)
        people: list[User] = []
        documents = []
        actor = document_id = None
        client = id_or_none(form.client)
        if form.person:
            people = await audit_views.find_people(session, principal, form.person)
            if len(people) == 1:
                actor = str(people[0].id)
        if form.document:
            documents = await audit_views.find_documents(session, principal, form.document, client)
            if len(documents) == 1:
                document_id = str(documents[0].id)
        found = None
        unresolved = (form.person and actor is None) or (form.document and document_id is None)
        try:
            since, until = day_bounds(caller.user, form.since, form.until)
            filters = aq.AuditFilter.parse(
                client_id=form.client if client else None,
                actor=actor,
                action=f"{form.group}.*" if form.group else None,
                document_id=document_id,
                outcome=form.outcome or None,
                since=since,
                until=until,
                ip=form.ip,
            )
        except AuditQueryError:
            form.errors.append("day")
            filters = None
        if filters is not None and not unresolved:
            found = await audit_views.events(
                session,
                principal,
                audit_context(request, principal),
                filters,
                view="search",
                before=cursor(request),
            )
    lang = page_language(request, {"user": caller.user})
    assert caller.browser is not None
    return render(
        request,
        "audit-search.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        form=form,
        clients=clients,
        families=FAMILIES,
        outcomes=OUTCOMES,
        people=people if actor is None else [],
        documents=documents if document_id is None else [],
        events=rows(found.rows, lang) if found else None,
        next_query=form.query(found.next_cursor) if found and found.next_cursor else None,
    )


@page
async def document_history(request: Request) -> Response:
    document_id = parse_id(request.path_params["document_id"], "document")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        principal = caller.principal
        document, found = await audit_views.document_events(
            session,
            principal,
            audit_context(request, principal),
            document_id,
            before=cursor(request),
        )
        client_name = await audit_views.client_name(session, str(document.client_id))
    lang = page_language(request, {"user": caller.user})
    assert caller.browser is not None
    return render(
        request,
        "audit-document.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        document=document,
        client_name=client_name,
        events=rows(found.rows, lang),
        next_query=f"before={found.next_cursor}" if found.next_cursor else None,
    )


@page
async def person_timeline(request: Request) -> Response:
    user_id = parse_id(request.path_params["user_id"], "user")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        principal = caller.principal
        person = await audit_views.person(session, principal, user_id)
        filters = aq.AuditFilter(actor=str(user_id))
        found = await audit_views.events(
            session,
            principal,
            audit_context(request, principal),
            filters,
            view="person",
            before=cursor(request),
        )
    lang = page_language(request, {"user": caller.user})
    assert caller.browser is not None
    return render(
        request,
        "audit-person.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        person=person,
        events=rows(found.rows, lang),
        next_query=f"before={found.next_cursor}" if found.next_cursor else None,
    )
