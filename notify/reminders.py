"""Reminders of document requests: one when the due date comes near, one when it has passed.

Each reminder is an audit event `request.reminder` that the feed turns into email to the
client's members. A request is claimed with a conditional UPDATE of its marker column, so of
several workers exactly one reminds, and a request is reminded at most once per state.
Claims come first, in id order, and audit appends after them: two workers never hold a
request row and the audit head in opposite orders.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import CursorResult, exists, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import document_requests as requests
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem


class Stage(StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


_MARKER = {Stage.DUE_SOON: "reminded_due_soon_at", Stage.OVERDUE: "reminded_overdue_at"}
# Only items the client still has to act on make a reminder worth sending.
_WAITING = (ItemStatus.REQUESTED.value, ItemStatus.REJECTED.value)


async def _candidates(
    session: AsyncSession, stage: Stage, today: date, reminder_days: int, limit: int
) -> list[uuid.UUID]:
    marker = col(getattr(DocumentRequest, _MARKER[stage]))
    waiting = exists().where(
        col(RequestItem.request_id) == col(DocumentRequest.id),
        col(RequestItem.status).in_(_WAITING),
    )
    query = select(DocumentRequest.id).where(
        col(DocumentRequest.closed_at).is_(None), marker.is_(None), waiting
    )
    if stage is Stage.OVERDUE:
        query = query.where(col(DocumentRequest.due_date) < today)
    else:
        query = query.where(
            col(DocumentRequest.due_date) >= today,
            col(DocumentRequest.due_date) <= today + timedelta(days=reminder_days),
        )
    rows = (await session.execute(query.order_by(col(DocumentRequest.id)).limit(limit))).all()
    return [row[0] for row in rows]


async def _claim(session: AsyncSession, stage: Stage, request_id: uuid.UUID, now: datetime) -> bool:
    marker = col(getattr(DocumentRequest, _MARKER[stage]))
    result = await session.execute(
        update(DocumentRequest)
        .where(
            col(DocumentRequest.id) == request_id,
            marker.is_(None),
            col(DocumentRequest.closed_at).is_(None),
        )
        .values({_MARKER[stage]: now})
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def remind(
    session: AsyncSession, *, now: datetime, reminder_days: int, limit: int = 500
) -> int:
    """Record one `request.reminder` per open request that just became due soon (within
    `reminder_days`) or overdue, while the client still owes an item; returns how many."""
    today = now.date()
    claimed: list[tuple[Stage, uuid.UUID]] = []
    for stage in (Stage.OVERDUE, Stage.DUE_SOON):
        for request_id in await _candidates(session, stage, today, reminder_days, limit):
            if await _claim(session, stage, request_id, now):
                claimed.append((stage, request_id))
    sent = 0
    for stage, request_id in claimed:
        request = await session.get(DocumentRequest, request_id)
        assert request is not None
        window = timedelta(days=reminder_days)
        if stage is Stage.DUE_SOON and request.created_at.date() >= request.due_date - window:
            # Opened already this close to its due date: the opening email said as much, so
            # the claim only marks it done.
            continue
        sent += 1
        await requests.record_reminder(session, request, stage.value)
    return sent
