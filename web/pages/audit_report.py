"""The access report: every document event of one client over a range of days, as CSV or PDF.

A download is itself audited (`audit.report_downloaded`, recorded before any byte is sent),
then a checkpoint is written that covers that event, and the report holds exactly the
matching events up to it; the PDF states the checkpoint, so the report can later be
checked against the log (docs/audit-log.md, "Exports that prove themselves").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from vault.audit import checkpoints, notes
from vault.audit import query as aq
from vault.audit import views as audit_views
from vault.db import transaction
from vault.errors import AuditQueryError
from vault.models import Client, User
from web import audit_sentences
from web.context import audit_context, services
from web.days import user_zone
from web.errors import ProblemError
from web.ids import id_or_none
from web.pages.common import browser_caller, page
from web.pages.render import page_language, render

FORMATS = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
CSV_HEADER = (
    "seq",
    "time_utc",
    "actor_name",
    "actor_email",
    "actor_role",
    "action",
    "sentence",
    "target_label",
    "version",
    "range",
    "ip",
    "outcome",
    "labels_from",
    "leaf_hash",
)


def routes() -> list[BaseRoute]:
    return [
        Route("/audit/report", report_form, methods=["GET"]),
        Route("/audit/report/download", report_download, methods=["GET"]),
    ]


@page
async def report_form(request: Request) -> Response:
    q = request.query_params
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        principal = caller.principal
        clients = await audit_views.report_form(
            session, principal, audit_context(request, principal)
        )
    assert caller.browser is not None
    return render(
        request,
        "audit-report.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        clients=clients,
        chosen=q.get("client", ""),
        since=q.get("since", ""),
        until=q.get("until", ""),
    )


@page
async def report_download(request: Request) -> Response:
    q = request.query_params
    svc = services(request)
    fmt = q.get("format", "")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session)
        principal = caller.principal
        audit_views.require_auditor(principal)
        client = await _client(session, q.get("client", ""))
        if fmt not in FORMATS or client is None:
            raise ProblemError(400, "Bad request")
        try:
            since, until = day_bounds(caller.user, q.get("since", ""), q.get("until", ""))
            filters = aq.AuditFilter.parse(
                client_id=str(client.id), action="document.*", since=since, until=until
            )
        except AuditQueryError:
            raise ProblemError(400, "Bad request") from None
        await audit_views.report_downloaded(
            session, principal, audit_context(request, principal), filters, fmt=fmt
        )
    note = await checkpoints.write(svc.sessions, svc.store, svc.checkpoint_signer)
    if note is None:
        raise ProblemError(503, "Unavailable")
    size = notes.parse_checkpoint(
        notes.open_note(note, svc.checkpoint_signer.verifier), svc.checkpoint_signer.name
    ).size
    lang = page_language(request, {"user": caller.user})
    name = f"access-report-{datetime.now(UTC):%Y%m%d}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    }

    async def shown() -> AsyncIterator[audit_views.Shown]:
        after = 0
        while after < size:
            async with transaction(svc.sessions) as session:
                batch = await aq.export_batch(session, filters, after=after)
                rows = await audit_views.shown(session, [e for e in batch if e.seq <= size])
            for row in rows:
                yield row
            if len(batch) < aq.EXPORT_BATCH:
                return
            after = batch[-1].seq

    if fmt == "csv":

        async def lines() -> AsyncIterator[bytes]:
            yield aq.csv_row(list(CSV_HEADER))
            async for row in shown():
                yield aq.csv_row(_csv_values(row, lang))

        return StreamingResponse(lines(), media_type=FORMATS["csv"], headers=headers)
    # Loaded on the first PDF: ReportLab, its fonts and the shaping of right-to-left text
    # are about 8 MiB that a server which never writes a report need not hold.
    from web.pages import audit_pdf

    collected: list[audit_views.Shown] = []
    truncated = False
    async for row in shown():
        if len(collected) == audit_pdf.MAX_ROWS:
            truncated = True
            break
        collected.append(row)
    facts = audit_pdf.Facts(
        client=client.name,
        since=q.get("since", ""),
        until=q.get("until", ""),
        produced_by=caller.user.email,
        produced_at=datetime.now(UTC),
        checkpoint=note,
        tree_size=size,
        truncated=truncated,
        lang=lang,
    )
    body = await anyio.to_thread.run_sync(audit_pdf.build, facts, collected)
    return Response(body, media_type=FORMATS["pdf"], headers=headers)


async def _client(session: AsyncSession, text: str) -> Client | None:
    client_id = id_or_none(text)
    return None if client_id is None else await session.get(Client, client_id)


def day_bounds(user: User, since: str, until: str) -> tuple[str | None, str | None]:
    """ISO instants for a range of days as the auditor reads them (their time zone), the
    last day included; raises AuditQueryError for a malformed day."""

    def start(text: str, extra: int) -> str | None:
        if not text:
            return None
        try:
            day = date.fromisoformat(text) + timedelta(days=extra)
        except (ValueError, OverflowError):
            raise AuditQueryError("a day is YYYY-MM-DD") from None
        return datetime.combine(day, time(), user_zone(user)).astimezone(UTC).isoformat()

    return start(since, 0), start(until, 1)


def _csv_values(row: audit_views.Shown, lang: str) -> list[object]:
    event, labels = row.event, row.labels
    details = audit_sentences.details_of(event)
    return [
        event.seq,
        event.ts,
        labels.get("actor_name"),
        labels.get("actor_email"),
        event.actor_role,
        event.action,
        audit_sentences.sentence(event, labels, lang, isolate=False),
        labels.get("target_label"),
        details.get("version"),
        details.get("range"),
        event.ip,
        event.outcome,
        labels.get("labels_from"),
        event.leaf_hash,
    ]
