"""Auditor routes: `/audit`, `/audit/export` (with its offline proof), `/audit/verify`."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from vault import audit
from vault.audit import checkpoints, notes
from vault.audit import labels as audit_labels
from vault.audit import query as aq
from vault.audit import reads as audit_reads
from vault.audit.export import ExportProof, jsonl_line, proof_line
from vault.audit.labels import Labels, shown
from vault.db import transaction
from vault.models import AuditEvent
from vault.policy import Permission, require
from web.api.common import api_call
from web.api.inputs import Query, QueryCount, parse_query
from web.context import services
from web.errors import ProblemError

if TYPE_CHECKING:
    from stream_zip import AsyncMemberFile

PROOF_BATCH = 64


Exported = tuple[AuditEvent, list[str] | None, dict[int, Labels]]


class EventSource(Protocol):
    def __call__(self, *, paths: bool) -> AsyncIterator[Exported]: ...


class AuditFilters(Query):
    client_id: str | None = None
    actor: str | None = None
    action: str | None = None
    document_id: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    ip: str | None = None


class AuditQuery(AuditFilters):
    limit: QueryCount = None
    cursor: QueryCount = None


class ExportQuery(AuditFilters):
    format: Literal["csv", "jsonl"] = "jsonl"


def _filters(q: AuditFilters) -> aq.AuditFilter:
    return aq.AuditFilter.parse(
        client_id=q.client_id,
        actor=q.actor,
        action=q.action,
        document_id=q.document_id,
        outcome=q.outcome,
        since=q.since,
        until=q.until,
        ip=q.ip,
    )


def event_json(event: AuditEvent, joined: dict[int, Labels]) -> dict[str, object]:
    data = {**shown(event, joined), **audit.entry(event)}
    data["leaf_hash"] = event.leaf_hash
    return data


async def list_events(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        # Parsed only once the caller may read the log: a stranger learns nothing from
        # validation errors (the reason prefetch_body defers JSON parsing too).
        query = parse_query(request, AuditQuery, title="Invalid filter")
        filters = _filters(query)
        limit, cursor = query.limit or 100, query.cursor
        events, next_cursor = await aq.page(call.session, filters, limit=limit, before=cursor)
        joined = await audit_labels.current(call.session, events)
        await audit_reads.record_search(call.session, call.audit, _described(filters))
        return JSONResponse(
            {
                "events": [event_json(e, joined) for e in events],
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
        query = parse_query(request, ExportQuery, title="Invalid filter")
        fmt = query.format
        filters = _filters(query)
        # The export is itself an audited access, recorded before any byte leaves.
        await audit_reads.record_export(
            call.session, call.audit, fmt=fmt, filters=_described(filters)
        )
    # Every export gets a checkpoint of its own (covering its own event), and holds only
    # the events that checkpoint covers, so the export is exactly that part of the log.
    signer = svc.checkpoint_signer
    note = await checkpoints.write(svc.sessions, svc.store, signer)
    if note is None:
        raise ProblemError(503, "Unavailable", "the audit log could not be checkpointed")
    size = notes.parse_checkpoint(notes.open_note(note, signer.verifier), signer.name).size
    proof = ExportProof(signer, checkpoint=note, tree_size=size, filters=_described(filters))

    async def events(*, paths: bool) -> AsyncIterator[Exported]:
        after = 0
        while after < size:
            # One short transaction per batch, closed before any byte is sent: a transaction
            # held while the client reads would hold SQLite's write lock (every transaction
            # here is BEGIN IMMEDIATE) and stall every other request for the whole export.
            async with transaction(svc.sessions) as session:
                batch = await aq.export_batch(session, filters, after=after, batch=aq.EXPORT_BATCH)
                joined = await audit_labels.current(session, batch)
            rows = [e for e in batch if e.seq <= size]
            for start in range(0, len(rows), PROOF_BATCH):
                part = rows[start : start + PROOF_BATCH]
                found: list[list[str] | None] = [None] * len(part)
                if paths:
                    # Proofs in small transactions too: a few milliseconds each, so a
                    # thousand at once would hold SQLite's write lock for seconds.
                    async with transaction(svc.sessions) as session:
                        found = [await proof.path(session, e) for e in part]
                for event, path in zip(part, found, strict=True):
                    yield event, path, joined
            if len(batch) < aq.EXPORT_BATCH:
                return
            after = batch[-1].seq

    if fmt == "jsonl":

        async def jsonl() -> AsyncIterator[bytes]:
            async for event, path, joined in events(paths=proof.filtered):
                proof.add(event)
                yield jsonl_line(event, joined, path)
            yield proof.trailer()

        return StreamingResponse(
            jsonl(),
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": 'attachment; filename="audit.jsonl"',
                "Cache-Control": "no-store",
            },
        )
    return StreamingResponse(
        csv_zip(events, proof),
        media_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="audit-csv.zip"',
            "Cache-Control": "no-store",
        },
    )


async def csv_zip(events: EventSource, proof: ExportProof) -> AsyncIterator[bytes]:
    """audit.csv, audit.checkpoint and audit.proof.jsonl (per-event proofs of a filtered
    export, then the trailer) in one zip, streamed as the rows are read."""
    from stream_zip import ZIP_64, async_stream_zip  # as in web.folder_zip: loaded when used

    async def rows() -> AsyncIterator[bytes]:
        yield aq.csv_header()
        async for event, _, joined in events(paths=False):
            proof.add(event)
            yield aq.csv_line(event, joined)

    async def proofs() -> AsyncIterator[bytes]:
        if proof.filtered:
            # A second pass over the same events (all at or below the checkpoint, so they
            # are the same ones), rather than holding every proof in memory meanwhile.
            async for event, path, _ in events(paths=True):
                yield proof_line(event, path or [])
        yield proof.trailer()

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    now = datetime.now(UTC)
    mode = stat.S_IFREG | 0o644

    async def members() -> AsyncIterator[AsyncMemberFile]:
        yield ("audit.csv", now, mode, ZIP_64, rows())
        yield ("audit.checkpoint", now, mode, ZIP_64, one(proof.checkpoint.encode()))
        yield ("audit.proof.jsonl", now, mode, ZIP_64, proofs())

    async for chunk in async_stream_zip(members()):
        yield chunk


async def verify_chain(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        await audit_reads.record_verify_asked(call.session, call.audit)
    async with transaction(services(request).sessions) as session:
        result = await audit.verify(session)
    return JSONResponse(result.as_dict(), headers={"Cache-Control": "no-store"})
