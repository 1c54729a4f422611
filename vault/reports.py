"""Figures for managers, per client: uploads and downloads per week, how fast document
requests are answered, overdue requests, storage growth and the most active users.

Activity is read from the audit log (every upload and download is an event there), requests
from their own tables, and storage from the versions' stored sizes (and those of shredded
versions from their `version.shredded` events). Admins see every client; staff only the
clients assigned to them; for anyone else a client's report does not exist.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import NotFoundError
from vault.models import AuditEvent, Client, Document, Role, User, Version
from vault.policy import Principal
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem

UPLOADS = ("document.created", "document.version_added")
DOWNLOADS = ("document.downloaded", "link.downloaded")
MAX_WEEKS = 104


@dataclass(frozen=True, slots=True)
class Week:
    start: date  # the Monday the week begins on
    uploads: int
    downloads: int
    # Bytes stored at the end of the week: every version, the trash included (quotas count
    # versions held in quarantine as well).
    stored: int


@dataclass(frozen=True, slots=True)
class Overdue:
    title: str
    due: date
    days: int


@dataclass(frozen=True, slots=True)
class ActiveUser:
    email: str
    name: str
    events: int


@dataclass(frozen=True, slots=True)
class ClientReport:
    client: Client
    weeks: list[Week]
    answered: int  # requests whose every item was accepted, opened in the period
    median_days: float | None
    p90_days: float | None
    overdue: list[Overdue]
    active: list[ActiveUser]


def reportable_clients(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The clients whose reports the caller may read; None means every client (admins)."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.STAFF:
        return principal.client_ids - principal.shared_client_ids
    return frozenset()


def may_read(principal: Principal) -> bool:
    return principal.role in (Role.ADMIN, Role.STAFF)


async def clients_for(session: AsyncSession, principal: Principal) -> list[Client]:
    """The clients the caller may report on, by name (archived ones too: their history)."""
    if not may_read(principal):
        raise NotFoundError("no such page")
    query = select(Client).order_by(col(Client.name_key))
    allowed = reportable_clients(principal)
    if allowed is not None:
        query = query.where(col(Client.id).in_(allowed))
    return list((await session.execute(query)).scalars().all())


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def percentile(values: list[float], share: float) -> float | None:
    """The `share` percentile by linear interpolation between closest ranks (NumPy's
    default), so the median of an even count is the mean of the middle two."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_download(details: str) -> bool:
    """Whether a `document.downloaded` or `link.downloaded` event is a download a person
    would count: the whole file, or the first piece of one fetched in ranges (a player or
    a download manager asks for the rest piece by piece); not a preview shown inline."""
    try:
        found = json.loads(details)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        return True  # nothing says it was partial
    if found.get("disposition") == "inline":
        return False
    wanted = found.get("range")
    return wanted is None or str(wanted).startswith("0-")


async def report(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    *,
    weeks: int = 12,
    today: date | None = None,
    context: audit.AuditContext | None = None,
) -> ClientReport:
    """The figures of one client over the last `weeks` weeks (this one included); shown to
    someone (audited) when `context` is given."""
    allowed = reportable_clients(principal)
    if not may_read(principal) or (allowed is not None and client_id not in allowed):
        raise NotFoundError("client not found")
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFoundError("client not found")
    today = today or datetime.now(UTC).date()
    weeks = max(1, min(weeks, MAX_WEEKS))
    if context is not None:
        await audit.record(
            session,
            context,
            AuditAction.REPORT_VIEWED,
            client_id=client.id,
            target_type="client",
            target_id=client.id,
            details={"weeks": weeks},
        )
    first = monday(today) - timedelta(weeks=weeks - 1)
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)

    rows = await session.execute(
        select(AuditEvent.ts, AuditEvent.action, AuditEvent.actor_id, AuditEvent.details).where(
            col(AuditEvent.client_id) == str(client.id),
            col(AuditEvent.ts) >= since.strftime("%Y-%m-%dT%H:%M:%S"),
            col(AuditEvent.outcome) == "success",
        )
    )
    uploads: Counter[date] = Counter()
    downloads: Counter[date] = Counter()
    actors: Counter[str] = Counter()
    for ts, action, actor, details in rows.all():
        week = monday(date.fromisoformat(ts[:10]))
        if action in UPLOADS:
            uploads[week] += 1
        elif action in DOWNLOADS and is_download(details):
            downloads[week] += 1
        if actor and action.startswith("document."):
            actors[actor] += 1

    series = [
        Week(start, uploads[start], downloads[start], stored)
        for start, stored in zip(
            starts, await _storage(session, client.id, since, starts), strict=True
        )
    ]

    median, p90, answered = await _turnaround(session, client.id, since)
    overdue = await _overdue(session, client.id, today)
    active = await _active(session, actors)
    return ClientReport(client, series, answered, median, p90, overdue, active)


async def _storage(
    session: AsyncSession, client_id: uuid.UUID, since: datetime, starts: list[date]
) -> list[int]:
    """Bytes stored at the end of each week: the versions there now, by when they were
    added, and the versions shredded since `since` (retention, the trash purge), which
    count from when they were added until the week they were shredded."""
    stored_before = await session.execute(
        select(func.coalesce(func.sum(Version.size), 0))
        .join(Document, col(Document.id) == col(Version.document_id))
        .where(col(Document.client_id) == client_id, col(Version.created_at) < since)
    )
    stored = int(stored_before.scalar_one())
    added: Counter[date] = Counter()
    removed: Counter[date] = Counter()
    recent = await session.execute(
        select(Version.created_at, Version.size)
        .join(Document, col(Document.id) == col(Version.document_id))
        .where(col(Document.client_id) == client_id, col(Version.created_at) >= since)
    )
    for created_at, size in recent.all():
        added[monday(_aware(created_at).date())] += int(size)
    # Only the audit log remembers them. A purged document's versions each have their own
    # `version.shredded`, so `document.purged` adds nothing here.
    cutoff = since.strftime("%Y-%m-%dT%H:%M:%S")
    shredded = await session.execute(
        select(AuditEvent.ts, AuditEvent.details).where(
            col(AuditEvent.client_id) == str(client_id),
            col(AuditEvent.action) == AuditAction.VERSION_SHREDDED.value,
            col(AuditEvent.ts) >= cutoff,
        )
    )
    for ts, details in shredded.all():
        facts = json.loads(details)
        size = int(facts.get("size") or 0)
        removed[monday(date.fromisoformat(ts[:10]))] += size
        # Events written before they said when the version was added count it from the
        # start of the period.
        born = facts.get("created_at")
        if not isinstance(born, str) or born < cutoff:
            stored += size
        else:
            added[monday(date.fromisoformat(born[:10]))] += size
    series = []
    for start in starts:
        stored += added[start] - removed[start]
        series.append(stored)
    return series


async def _turnaround(
    session: AsyncSession, client_id: uuid.UUID, since: datetime
) -> tuple[float | None, float | None, int]:
    """Days from a request's opening to the acceptance of its last item, for the requests
    opened since `since` whose every item was accepted."""
    rows = await session.execute(
        select(
            DocumentRequest.id,
            DocumentRequest.created_at,
            RequestItem.status,
            RequestItem.answered_at,
        )
        .join(RequestItem, col(RequestItem.request_id) == col(DocumentRequest.id))
        .where(
            col(DocumentRequest.client_id) == client_id, col(DocumentRequest.created_at) >= since
        )
    )
    opened: dict[uuid.UUID, datetime] = {}
    accepted: dict[uuid.UUID, datetime | None] = {}
    for request_id, created_at, status, answered_at in rows.all():
        opened[request_id] = _aware(created_at)
        done = status == ItemStatus.ACCEPTED and answered_at is not None
        if request_id in accepted and accepted[request_id] is None:
            continue
        if not done:
            accepted[request_id] = None
        else:
            moment = _aware(answered_at)
            prior = accepted.get(request_id)
            accepted[request_id] = max(prior, moment) if prior else moment
    days = [
        (moment - opened[request_id]).total_seconds() / 86400
        for request_id, moment in accepted.items()
        if moment is not None
    ]
    return percentile(days, 0.5), percentile(days, 0.9), len(days)


async def _overdue(session: AsyncSession, client_id: uuid.UUID, today: date) -> list[Overdue]:
    rows = await session.execute(
        select(col(DocumentRequest.title), col(DocumentRequest.due_date))
        .where(
            col(DocumentRequest.client_id) == client_id,
            col(DocumentRequest.closed_at).is_(None),
            col(DocumentRequest.due_date) < today,
        )
        .order_by(col(DocumentRequest.due_date))
    )
    return [Overdue(title, due, (today - due).days) for title, due in rows.all()]


async def _active(session: AsyncSession, actors: Counter[str], top: int = 10) -> list[ActiveUser]:
    ranked = actors.most_common(top)
    ids = []
    for actor, _ in ranked:
        try:
            ids.append(uuid.UUID(actor))
        except ValueError:
            continue
    users = {
        str(u.id): u
        for u in (await session.execute(select(User).where(col(User.id).in_(ids)))).scalars()
    }
    return [ActiveUser(users[a].email, users[a].display_name, n) for a, n in ranked if a in users]


async def exported(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    *,
    table: str,
    weeks: int = 12,
) -> ClientReport:
    """`report`, for a download of one of its tables: the export is audited, as any data
    leaving the portal is."""
    found = await report(session, principal, client_id, weeks=weeks)
    await audit.record(
        session,
        context,
        AuditAction.REPORT_EXPORTED,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
        details={"table": table, "weeks": weeks},
    )
    return found
