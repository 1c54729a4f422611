"""Auditor routes: `/audit`, `/audit/export`, `/audit/verify`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from vault import audit
from vault import audit_query as aq
from vault.audit import AuditQueryError
from vault.db import transaction
from vault.models import AuditEvent
from vault.policy import Permission, require
from web.api.common import api_call
from web.context import services
from web.errors import ProblemError
from web.numbers import INT64_MAX, parse_int


def _filters(request: Request) -> aq.AuditFilter:
    q = request.query_params
    try:
        return aq.AuditFilter.parse(
            client_id=q.get("client_id"),
            actor=q.get("actor"),
            action=q.get("action"),
            document_id=q.get("document_id"),
            since=q.get("since"),
            until=q.get("until"),
        )
    except AuditQueryError as exc:
        raise ProblemError(422, "Invalid filter", str(exc)) from None


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # audit_events.seq is a 64-bit integer: a larger cursor is malformed, not "everything".
    value = parse_int(raw, maximum=INT64_MAX)
    if value is None:
        raise ProblemError(422, "Invalid filter", f"{name} must be a positive integer")
    return value


def event_json(event: AuditEvent) -> dict[str, object]:
    data = audit.entry(event)
    data["leaf_hash"] = event.leaf_hash
    return data


async def list_events(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        # Parsed only once the caller may read the log: a stranger learns nothing from
        # validation errors (the reason prefetch_body defers JSON parsing too).
        filters = _filters(request)
        limit = _int_param(request, "limit", 100) or 100
        cursor = _int_param(request, "cursor", None)
        events, next_cursor = await aq.page(call.session, filters, limit=limit, before=cursor)
        await audit.record(
            call.session, call.audit, "audit.viewed", details={"filters": _described(filters)}
        )
        return JSONResponse(
            {
                "events": [event_json(e) for e in events],
                "next_cursor": str(next_cursor) if next_cursor is not None else None,
            },
            headers={"Cache-Control": "no-store"},
        )


def _described(filters: aq.AuditFilter) -> dict[str, str]:
    return {k: v for k, v in vars_of(filters).items() if v}


def vars_of(filters: aq.AuditFilter) -> dict[str, str | None]:
    return {name: getattr(filters, name) for name in filters.__slots__}


async def export_events(request: Request) -> Response:
    svc = services(request)
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("csv", "jsonl"):
            raise ProblemError(422, "Invalid filter", "format must be csv or jsonl")
        filters = _filters(request)
        # The export is itself an audited access, recorded before any byte leaves.
        await audit.record(
            call.session,
            call.audit,
            "audit.exported",
            details={"format": fmt, "filters": _described(filters)},
        )
    line: Callable[[AuditEvent], bytes] = aq.csv_line if fmt == "csv" else aq.jsonl_line

    async def body() -> AsyncIterator[bytes]:
        if fmt == "csv":
            yield aq.csv_header()
        after = 0
        while True:
            # One short transaction per batch, closed before any byte is sent: a transaction
            # held while the client reads would hold SQLite's write lock (every transaction
            # here is BEGIN IMMEDIATE) and stall every other request for the whole export.
            async with transaction(svc.sessions) as session:
                rows = await aq.export_batch(session, filters, after=after, batch=aq.EXPORT_BATCH)
            for event in rows:
                yield line(event)
            if len(rows) < aq.EXPORT_BATCH:
                return
            after = rows[-1].seq

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        body(),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


async def verify_chain(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        await audit.record(call.session, call.audit, "audit.verified")
    async with transaction(services(request).sessions) as session:
        result = await audit.verify(session)
    return JSONResponse(result.as_dict(), headers={"Cache-Control": "no-store"})
