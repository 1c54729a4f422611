"""The tamper-evident audit log: a gap-free, hash-chained sequence of events.

Each event's canonical encoding (sorted-key compact UTF-8 JSON, see docs/audit-log.md)
includes the previous event's leaf hash; the leaf hash is RFC 9162 §2.1.1's
`SHA-256(0x00 || entry)`, so a Merkle tree with signed checkpoints can be built over the
same leaves later. Appends lock the single `audit_head` row, which serialises writers on
PostgreSQL (row lock) and SQLite (the IMMEDIATE write lock) alike.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.audit import labels as audit_labels
from vault.audit.actions import AuditAction, check_details
from vault.models import AuditEvent, AuditHead

GENESIS = "0" * 64
# Format 2 adds the labels below; format 1 events keep their own encoding and hashes.
FORMAT_VERSION = 2
LABEL_FIELDS = ("actor_email", "actor_name", "target_label")
_FIELDS = (
    "seq",
    "ts",
    "actor_id",
    "actor_role",
    "action",
    "client_id",
    "target_type",
    "target_id",
    "document_id",
    "ip",
    "user_agent",
    "outcome",
)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who acts and from where; built once per request by the web layer."""

    actor_id: str | None = None
    actor_role: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    # Ties the event to the request's log line; kept in `details`, so the entry format and
    # the hashes of older events are unchanged.
    request_id: str | None = None

    def acting_as(self, user_id: object, role: str) -> AuditContext:
        """The same request, with the actor now known (e.g. once a password checked out)."""
        return AuditContext(str(user_id), str(role), self.ip, self.user_agent, self.request_id)


SYSTEM = AuditContext(actor_role="system")

# Told how long each append took (seconds), for the web layer's metrics; vault itself
# depends on no metrics library.
_append_observers: list[Callable[[float], None]] = []


def observe_appends(observer: Callable[[float], None]) -> Callable[[], None]:
    """Call `observer` with the duration of every append; returns a function that stops it."""
    _append_observers.append(observer)
    return lambda: _append_observers.remove(observer)


def timestamp(moment: datetime | None = None) -> str:
    """UTC, millisecond precision, fixed width, so string order is time order."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entry(event: AuditEvent) -> dict[str, Any]:
    """The event as the JSON object its leaf hash covers."""
    data: dict[str, Any] = {name: getattr(event, name) for name in _FIELDS}
    data["v"] = event.v
    if event.v >= 2:
        for name in LABEL_FIELDS:
            data[name] = getattr(event, name)
    data["details"] = json.loads(event.details)
    data["prev"] = event.prev_hash
    return data


def canonical(event: AuditEvent) -> bytes:
    return json.dumps(
        entry(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def leaf_hash(event: AuditEvent) -> str:
    return hashlib.sha256(b"\x00" + canonical(event)).hexdigest()


async def record(
    session: AsyncSession,
    context: AuditContext,
    action: AuditAction,
    *,
    outcome: str = "success",
    client_id: object | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    document_id: object | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event of the vocabulary in the caller's transaction (it commits or rolls back
    with the change).

    Details must hold only JSON scalars, lists and objects, and never secrets or file contents.

    Raises:
        TypeError: `action` is not an `AuditAction`, or `details` holds a key it does not
            declare (a programming error).
    """
    check_details(action, details or {})
    return await append(
        session,
        context,
        action.value,
        outcome=outcome,
        client_id=client_id,
        target_type=target_type,
        target_id=target_id,
        document_id=document_id,
        details=details,
    )


async def append(
    session: AsyncSession,
    context: AuditContext,
    action: str,
    *,
    outcome: str = "success",
    client_id: object | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    document_id: object | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """The chain's own append, below the vocabulary: any action name, any details. Code records
    through `record`; this is for what plants events as they are (tests, tools)."""
    started = time.perf_counter()
    facts = dict(details or {})
    if context.request_id is not None:
        facts.setdefault("request_id", context.request_id)
    target = None if target_id is None else str(target_id)
    document = None if document_id is None else str(document_id)
    # Looked up before the head is locked, so the lock is held no longer than before.
    labels = await audit_labels.at_record(
        session,
        actor_id=context.actor_id,
        target_type=target_type,
        target_id=target,
        document_id=document,
        details=facts,
    )
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).scalar_one()
    event = AuditEvent(
        seq=head.seq + 1,
        ts=timestamp(),
        actor_id=context.actor_id,
        actor_role=context.actor_role,
        action=action,
        client_id=None if client_id is None else str(client_id),
        target_type=target_type,
        target_id=target,
        document_id=document,
        ip=context.ip,
        user_agent=(context.user_agent or "")[:256] or None,
        outcome=outcome,
        details=json.dumps(facts, sort_keys=True, separators=(",", ":")),
        prev_hash=head.leaf_hash,
        leaf_hash="",
        v=FORMAT_VERSION,
        actor_email=labels.actor_email,
        actor_name=labels.actor_name,
        target_label=labels.target_label,
    )
    event.leaf_hash = leaf_hash(event)
    head.seq = event.seq
    head.leaf_hash = event.leaf_hash
    session.add(event)
    session.add(head)
    await session.flush()
    elapsed = time.perf_counter() - started
    for observer in _append_observers:
        observer(elapsed)
    return event


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    events: int
    head: str
    first_bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "events": self.events, "head": self.head}
        if not self.ok:
            out["first_bad_seq"] = self.first_bad_seq
            out["reason"] = self.reason
        return out


async def iter_events(
    session: AsyncSession, *, after: int = 0, batch: int = 1000
) -> AsyncIterator[AuditEvent]:
    """Every event with seq > `after`, oldest first, fetched in batches."""
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.seq > after)
                    .order_by(col(AuditEvent.seq))
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = rows[-1].seq


async def verify(session: AsyncSession) -> Verification:
    """Walk the whole chain; report the first event that was altered, removed or reordered."""
    expected_seq = 1
    prev = GENESIS
    count = 0
    async for event in iter_events(session):
        if event.seq != expected_seq:
            return Verification(
                False, count, prev, expected_seq, f"event {expected_seq} is missing"
            )
        if event.prev_hash != prev:
            return Verification(False, count, prev, event.seq, "chain broken: prev does not match")
        try:
            computed = leaf_hash(event)
        except (ValueError, TypeError):
            return Verification(False, count, prev, event.seq, "details are not valid JSON")
        if computed != event.leaf_hash:
            return Verification(False, count, prev, event.seq, "event content was altered")
        prev = event.leaf_hash
        expected_seq += 1
        count += 1
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if head.seq != count or head.leaf_hash != prev:
        return Verification(
            False, count, prev, min(head.seq, count) + 1, "log was truncated or head moved"
        )
    return Verification(True, count, prev)
