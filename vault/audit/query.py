"""Reading the audit log: filters, cursor pagination and streamed export."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from vault.audit.actions import FAMILY_ACTIONS
from vault.audit.chain import entry, timestamp
from vault.audit.labels import Labels, shown
from vault.errors import AuditQueryError
from vault.models import AuditEvent

MAX_LIMIT = 1000
CSV_COLUMNS = (
    "seq",
    "ts",
    "actor_id",
    "actor_role",
    "action",
    "outcome",
    "client_id",
    "target_type",
    "target_id",
    "document_id",
    "ip",
    "user_agent",
    "details",
    "prev",
    "leaf_hash",
    # Added with entry format 2; appended so that the columns before keep their places.
    "actor_email",
    "actor_name",
    "target_label",
    "labels_from",
    "v",
)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    client_id: str | None = None
    actor: str | None = None
    action: str | None = None
    document_id: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    ip: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        client_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        document_id: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        until: str | None = None,
        ip: str | None = None,
    ) -> AuditFilter:
        return cls(
            client_id=client_id or None,
            actor=actor or None,
            action=action or None,
            document_id=document_id or None,
            outcome=outcome or None,
            since=_instant(since, "since"),
            until=_instant(until, "until"),
            ip=(ip or "").strip() or None,
        )

    def apply(self, query: SelectOfScalar[AuditEvent]) -> SelectOfScalar[AuditEvent]:
        if self.client_id:
            query = query.where(AuditEvent.client_id == self.client_id)
        if self.actor:
            query = query.where(AuditEvent.actor_id == self.actor)
        if self.action:
            # "document.*" selects a family of actions: its actions from the vocabulary, as
            # `action IN (...)`, so that a rare family is found through the action index. A
            # prefix LIKE cannot use that index under a non-C collation and walked the whole
            # log backwards for a family with few events.
            family = self.action[:-2] if self.action.endswith(".*") else None
            if family in FAMILY_ACTIONS:
                query = query.where(col(AuditEvent.action).in_(FAMILY_ACTIONS[family]))
            elif family is not None:
                # Not a family of ours (events appended outside the vocabulary, in tests):
                # the prefix as such. autoescape: `_` and `%` are literal, not wildcards.
                query = query.where(
                    col(AuditEvent.action).startswith(self.action[:-1], autoescape=True)
                )
            else:
                query = query.where(AuditEvent.action == self.action)
        if self.document_id:
            query = query.where(AuditEvent.document_id == self.document_id)
        if self.outcome:
            query = query.where(AuditEvent.outcome == self.outcome)
        if self.ip:
            query = query.where(AuditEvent.ip == self.ip)
        if self.since:
            query = query.where(AuditEvent.ts >= self.since)
        if self.until:
            query = query.where(AuditEvent.ts < self.until)
        return query


def _instant(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AuditQueryError(
            f"{name} must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise AuditQueryError(f"{name} needs a time zone, e.g. a trailing Z")
    return timestamp(moment)


async def page(
    session: AsyncSession, filters: AuditFilter, *, limit: int = 100, before: int | None = None
) -> tuple[Sequence[AuditEvent], int | None]:
    """Newest first; returns the events and the cursor for the next (older) page."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = filters.apply(select(AuditEvent))
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = (
        (await session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))  # type: ignore[attr-defined]
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


EXPORT_BATCH = 1000


async def export_batch(
    session: AsyncSession, filters: AuditFilter, *, after: int, batch: int = EXPORT_BATCH
) -> Sequence[AuditEvent]:
    """The next `batch` matching events with seq > `after`, oldest first."""
    return (
        (
            await session.execute(
                filters.apply(select(AuditEvent))
                .where(AuditEvent.seq > after)
                .order_by(col(AuditEvent.seq))
                .limit(batch)
            )
        )
        .scalars()
        .all()
    )


def csv_header() -> bytes:
    return _csv_row(list(CSV_COLUMNS))


def csv_line(event: AuditEvent, joined: dict[int, Labels]) -> bytes:
    """One row; `joined` holds the current-table labels of format 1 events (labels.current)."""
    data = entry(event)
    labels = shown(event, joined)
    row = [
        data["seq"],
        data["ts"],
        data["actor_id"],
        data["actor_role"],
        data["action"],
        data["outcome"],
        data["client_id"],
        data["target_type"],
        data["target_id"],
        data["document_id"],
        data["ip"],
        data["user_agent"],
        event.details,
        data["prev"],
        event.leaf_hash,
        labels["actor_email"],
        labels["actor_name"],
        labels["target_label"],
        labels["labels_from"],
        event.v,
    ]
    return _csv_row(row)


def csv_row(values: list[object]) -> bytes:
    """One CSV line, every cell defused against spreadsheet formulas."""
    return _csv_row(values)


def _csv_row(values: list[object]) -> bytes:
    buffer = io.StringIO()
    cleaned = [_no_formula("" if v is None else str(v)) for v in values]
    csv.writer(buffer, lineterminator="\r\n").writerow(cleaned)
    return buffer.getvalue().encode("utf-8")


def _no_formula(value: str) -> str:
    # CSV injection: a cell starting with = + - @ runs as a formula in spreadsheets (OWASP).
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value
