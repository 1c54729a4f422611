"""Alerts: a few rules evaluated over the audit log as its events arrive.

`evaluate` reads the events past the durable cursor `alerts` (the `cursors` row is locked
first, `FOR UPDATE` on PostgreSQL and the write lock on SQLite, so any number of app
processes take turns, as the notifier does), checks each against the rules and advances
the cursor, all in one transaction. Every alert raised is an `Alert` row naming the events
behind it, and an `alert.raised` event in the same transaction.

The rules (thresholds in `Rules`):
- `downloads`: one person downloaded more than N distinct documents within M minutes;
- `refusals`: N refused requests (outcome `denied`) of one person, or one address signed
  out, within M minutes;
- `failed_signins`: N failed (or locked-out) sign-ins from one address within M minutes;
- `new_address`: a sign-in from an address never seen before for that account (not the
  account's first sign-in);
- `privilege`: a role change, a reset second factor, or a key rotation.
A threshold rule fires once per window: after an alert for one subject, that subject's
next alert of the same rule needs events after the window has passed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, ColumnElement, String, Text, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from vault.audit import chain as audit
from vault.audit.actions import AuditAction
from vault.audit.chain import AuditContext
from vault.errors import NotFoundError
from vault.models import AuditEvent, AuditHead, Cursor, utcnow
from vault.policy import Permission, Principal, require

CURSOR = "alerts"
RAISED = AuditAction.ALERT_RAISED
DOWNLOADS, REFUSALS, FAILED_SIGNINS = "downloads", "refusals", "failed_signins"
NEW_ADDRESS, PRIVILEGE = "new_address", "privilege"
RULES = (DOWNLOADS, REFUSALS, FAILED_SIGNINS, NEW_ADDRESS, PRIVILEGE)
_SIGN_IN_FAILED = ("failure", "locked")
_ALERT_CONTEXT = AuditContext(actor_role="system")


class Alert(SQLModel, table=True):
    """One alert: which rule fired, about whom, and the events behind it."""

    __tablename__ = "alerts"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    rule: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    # Whom the rule counted: a user id, or `ip:<address>` for a caller not signed in.
    subject: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    actor_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    ip: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    # The event that crossed the threshold, and its time (audit `ts` format).
    seq: int = Field(index=True)
    ts: str = Field(sa_column=Column(String(32), nullable=False))
    # The audit seqs behind the alert, as a JSON list.
    seqs: str = Field(sa_column=Column(Text, nullable=False))
    details: str = Field(sa_column=Column(Text, nullable=False))
    raised_at: datetime = Field(default_factory=utcnow, index=True)
    emailed_at: datetime | None = Field(default=None, index=True)


@dataclass(frozen=True, slots=True)
class Threshold:
    """More than (`downloads`) or at least (the others) `count` events within `minutes`."""

    count: int
    minutes: int

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class Rules:
    """Which rules run; a threshold of None turns its rule off."""

    downloads: Threshold | None = field(default_factory=lambda: Threshold(20, 10))
    refusals: Threshold | None = field(default_factory=lambda: Threshold(10, 10))
    failed_signins: Threshold | None = field(default_factory=lambda: Threshold(5, 10))
    new_address: bool = True
    privilege: bool = True

    @property
    def longest_window(self) -> timedelta:
        thresholds = (self.downloads, self.refusals, self.failed_signins)
        return max((t.window for t in thresholds if t is not None), default=timedelta(0))


def moment(ts: str) -> datetime:
    """An event's `ts` as a datetime (UTC)."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _since(event: AuditEvent, window: timedelta) -> str:
    return audit.timestamp(moment(event.ts) - window)


def _subject(event: AuditEvent) -> str:
    return event.actor_id or f"ip:{event.ip or 'unknown'}"


async def _lock_cursor(session: AsyncSession) -> Cursor:
    cursor = (
        await session.execute(select(Cursor).where(Cursor.name == CURSOR).with_for_update())
    ).scalar_one_or_none()
    if cursor is None:
        # Created by the migration; if removed, restart at the end: old events are history.
        head = (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar_one()
        cursor = Cursor(name=CURSOR, seq=head)
        session.add(cursor)
        await session.flush()
    return cursor


async def _recent_alert(session: AsyncSession, rule: str, subject: str, since: str) -> Alert | None:
    """An alert of `rule` about `subject` raised for an event at or after `since`."""
    query = (
        select(Alert)
        .where(Alert.rule == rule, Alert.subject == subject, col(Alert.ts) >= since)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


def _in_window(
    event: AuditEvent, window: timedelta, floor: int, *conditions: ColumnElement[bool]
) -> list[ColumnElement[bool]]:
    return [
        col(AuditEvent.seq) >= floor,
        col(AuditEvent.seq) <= event.seq,
        col(AuditEvent.ts) >= _since(event, window),
        *conditions,
    ]


def _same_subject(event: AuditEvent) -> ColumnElement[bool]:
    if event.actor_id is not None:
        return col(AuditEvent.actor_id) == event.actor_id
    return col(AuditEvent.actor_id).is_(None) & (col(AuditEvent.ip) == event.ip)


@dataclass(frozen=True, slots=True)
class _Crossed:
    """A threshold an event completes: the rule, which events count, and what they add up to."""

    rule: str
    where: list[ColumnElement[bool]]
    facts: dict[str, object]


async def _threshold(
    session: AsyncSession, rules: Rules, event: AuditEvent, floor: int
) -> _Crossed | None:
    """The threshold rule this event completes, if any, counting events from seq `floor`
    (at or before its window's first).

    Counted in the database: every event is checked as it arrives, and loading the events in
    its window instead made each check cost as many rows as the window held, so a person
    downloading many documents made each of their downloads dearer to check than the last
    (2,000 downloads within ten minutes took 39 CPU seconds to check on SQLite, 32 on
    PostgreSQL; counted, 3 and 2).
    """
    if event.action == "document.downloaded" and rules.downloads and event.actor_id:
        limit = rules.downloads
        where = _in_window(
            event,
            limit.window,
            floor,
            col(AuditEvent.action) == "document.downloaded",
            col(AuditEvent.actor_id) == event.actor_id,
        )
        documents = await _count(session, func.count(func.distinct(AuditEvent.document_id)), where)
        if documents > limit.count:
            return _Crossed(DOWNLOADS, where, {"documents": documents, "minutes": limit.minutes})
    elif event.outcome == "denied" and rules.refusals:
        limit = rules.refusals
        where = _in_window(
            event, limit.window, floor, col(AuditEvent.outcome) == "denied", _same_subject(event)
        )
        refusals = await _count(session, func.count(), where)
        if refusals >= limit.count:
            return _Crossed(REFUSALS, where, {"refusals": refusals, "minutes": limit.minutes})
    elif event.action == "auth.login" and event.outcome in _SIGN_IN_FAILED and rules.failed_signins:
        limit = rules.failed_signins
        where = _in_window(
            event,
            limit.window,
            floor,
            col(AuditEvent.action) == "auth.login",
            col(AuditEvent.outcome).in_(_SIGN_IN_FAILED),
            col(AuditEvent.ip) == event.ip,
        )
        failures = await _count(session, func.count(), where)
        if failures >= limit.count:
            return _Crossed(FAILED_SIGNINS, where, {"failures": failures, "minutes": limit.minutes})
    return None


async def _count(
    session: AsyncSession, counted: ColumnElement[int], where: list[ColumnElement[bool]]
) -> int:
    found = await session.execute(select(counted).select_from(AuditEvent).where(*where))
    return int(found.scalar_one())


async def _seqs(session: AsyncSession, where: list[ColumnElement[bool]]) -> list[int]:
    """The seqs of the events `where` picks, oldest first: those behind an alert."""
    query = select(AuditEvent.seq).where(*where).order_by(col(AuditEvent.seq))
    return list((await session.execute(query)).scalars().all())


async def _new_address(session: AsyncSession, event: AuditEvent) -> bool:
    if event.action != "auth.login" or event.outcome != "success" or not event.actor_id:
        return False
    earlier = (
        select(AuditEvent.ip)
        .where(
            col(AuditEvent.seq) < event.seq,
            col(AuditEvent.action) == "auth.login",
            col(AuditEvent.outcome) == "success",
            col(AuditEvent.actor_id) == event.actor_id,
        )
        .distinct()
    )
    seen = set((await session.execute(earlier)).scalars().all())
    return bool(seen) and event.ip not in seen


def _privilege(event: AuditEvent) -> bool:
    if event.action in ("keys.rotated", "mfa.reset", "user.role_changed"):
        return True
    # Role changes were recorded as `user.updated` with `role` before the console existed.
    return event.action == "user.updated" and "role" in json.loads(event.details)


async def _raise(
    session: AsyncSession,
    rule: str,
    event: AuditEvent,
    behind: list[int],
    facts: dict[str, object],
) -> Alert:
    """Raise an alert about `event`, naming the seqs of the events `behind` it."""
    alert = Alert(
        rule=rule,
        subject=_subject(event),
        actor_id=event.actor_id,
        ip=event.ip,
        seq=event.seq,
        ts=event.ts,
        seqs=json.dumps(behind),
        details=json.dumps({**facts, "action": event.action}, sort_keys=True),
    )
    session.add(alert)
    await session.flush()
    await audit.record(
        session,
        _ALERT_CONTEXT,
        RAISED,
        target_type="alert",
        target_id=alert.id,
        details={"rule": rule, "subject": alert.subject, "events": len(behind), **facts},
    )
    return alert


async def _check(
    session: AsyncSession, rules: Rules, event: AuditEvent, floor: int
) -> Alert | None:
    crossed = await _threshold(session, rules, event, floor)
    if crossed is not None:
        threshold = getattr(rules, crossed.rule)
        assert isinstance(threshold, Threshold)
        # Once per window: nothing more about this subject until the window has passed.
        since = _since(event, threshold.window)
        if await _recent_alert(session, crossed.rule, _subject(event), since):
            return None
        behind = await _seqs(session, crossed.where)
        return await _raise(session, crossed.rule, event, behind, crossed.facts)
    if rules.new_address and await _new_address(session, event):
        return await _raise(session, NEW_ADDRESS, event, [event.seq], {})
    if rules.privilege and _privilege(event):
        return await _raise(session, PRIVILEGE, event, [event.seq], {})
    return None


async def evaluate(session: AsyncSession, rules: Rules, *, batch: int = 500) -> list[Alert]:
    """Check the events past the cursor (up to `batch` of them) and advance it; the alerts
    raised. Commit the caller's transaction to keep them."""
    cursor = await _lock_cursor(session)
    events = (
        (
            await session.execute(
                select(AuditEvent)
                .where(col(AuditEvent.seq) > cursor.seq, col(AuditEvent.action) != RAISED)
                .order_by(col(AuditEvent.seq))
                .limit(batch)
            )
        )
        .scalars()
        .all()
    )
    if not events:
        return []
    # No window checked in this pass holds an event before seq `floor`, so each count
    # searches a person's (or an address's) events from there, by index, not their whole
    # history. (`seq + 0`: SQLite would find the least seq by walking the primary key from
    # the log's first event, rather than read the window's through the index on `ts`.)
    start = min(moment(event.ts) for event in events) - rules.longest_window
    found = await session.execute(
        select(func.min(col(AuditEvent.seq) + 0)).where(
            col(AuditEvent.ts) >= audit.timestamp(start)
        )
    )
    floor = found.scalar_one_or_none() or 0
    raised: list[Alert] = []
    for event in events:
        alert = await _check(session, rules, event, floor)
        if alert is not None:
            raised.append(alert)
    cursor.seq = events[-1].seq
    session.add(cursor)
    return raised


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    context: AuditContext,
    *,
    limit: int = 100,
    before: datetime | None = None,
) -> list[Alert]:
    """The newest alerts (auditors and admins), an audited read."""
    require(principal, Permission.READ_AUDIT, None)
    query = select(Alert).order_by(col(Alert.raised_at).desc(), col(Alert.seq).desc())
    if before is not None:
        query = query.where(col(Alert.raised_at) < before)
    found = list((await session.execute(query.limit(limit))).scalars().all())
    await audit.record(session, context, AuditAction.ALERT_LISTED, details={"alerts": len(found)})
    return found


async def get_alert(
    session: AsyncSession, principal: Principal, context: AuditContext, alert_id: uuid.UUID
) -> tuple[Alert, list[AuditEvent]]:
    """One alert and the events behind it (auditors and admins), an audited read."""
    require(principal, Permission.READ_AUDIT, None)
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError("alert not found")
    seqs = [int(s) for s in json.loads(alert.seqs)]
    rows = await session.execute(
        select(AuditEvent).where(col(AuditEvent.seq).in_(seqs)).order_by(col(AuditEvent.seq))
    )
    await audit.record(
        session, context, AuditAction.ALERT_VIEWED, target_type="alert", target_id=alert.id
    )
    return alert, list(rows.scalars().all())


async def unsent(session: AsyncSession, *, limit: int = 200) -> list[Alert]:
    """Alerts not yet emailed, oldest first, locked for the caller's transaction."""
    query = (
        select(Alert)
        .where(col(Alert.emailed_at).is_(None))
        .order_by(col(Alert.raised_at), col(Alert.seq))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars().all())


async def count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Alert))).scalar_one())
