"""The firm's list of document requests, filtered: open, closed or all; one client; by due
date. Counts per state come with it, so the list can say how many each tab holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.document_requests import RequestView, _listed, _require_client, _views
from vault.policy import Permission, Principal, require, visible_client_ids
from vault.request_tables import DocumentRequest

WEEK = 7  # "due this week": today and the six days after it


class State(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


class Due(StrEnum):
    ANY = "any"
    OVERDUE = "overdue"  # open and past its due date
    WEEK = "week"  # due today or within the next six days
    LATER = "later"  # due after that


@dataclass(frozen=True, slots=True)
class Listing:
    views: list[RequestView]
    counts: dict[State, int]


def _due_filter(due: Due, today: date) -> list[Any]:
    when = col(DocumentRequest.due_date)
    if due is Due.OVERDUE:
        return [col(DocumentRequest.closed_at).is_(None), when < today]
    if due is Due.WEEK:
        return [when >= today, when < today + timedelta(days=WEEK)]
    if due is Due.LATER:
        return [when >= today + timedelta(days=WEEK)]
    return []


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    today: date,
    state: State = State.OPEN,
    client_id: uuid.UUID | None = None,
    due: Due = Due.ANY,
    context: audit.AuditContext | None = None,
) -> Listing:
    """Requests of the clients the caller may see (or of `client_id` only), in `state` and
    `due` (relative to `today`, the caller's day): open ones first by due date, closed ones
    newest closed first. Shown to someone (audited) when `context` is given."""
    conditions: list[Any] = _due_filter(due, today)
    if client_id is not None:
        _require_client(principal, client_id)
        require(principal, Permission.VIEW, client_id)
        conditions.append(col(DocumentRequest.client_id) == client_id)
    else:
        visible = visible_client_ids(principal)
        if visible is not None:
            conditions.append(col(DocumentRequest.client_id).in_(visible))
    is_open = col(DocumentRequest.closed_at).is_(None)
    tally = await session.execute(
        select(is_open.label("open"), func.count()).where(*conditions).group_by(is_open)
    )
    counts = {State.OPEN: 0, State.CLOSED: 0}
    for open_, number in tally.all():
        counts[State.OPEN if open_ else State.CLOSED] += int(number)
    counts[State.ALL] = counts[State.OPEN] + counts[State.CLOSED]
    query = select(DocumentRequest).where(*conditions)
    if state is State.OPEN:
        query = query.where(is_open)
    elif state is State.CLOSED:
        query = query.where(col(DocumentRequest.closed_at).is_not(None))
    query = query.order_by(
        col(DocumentRequest.closed_at).is_not(None),
        col(DocumentRequest.closed_at).desc(),
        col(DocumentRequest.due_date),
        col(DocumentRequest.created_at),
    )
    rows = (await session.execute(query)).scalars().all()
    await _listed(session, context, len(rows), client_id)
    return Listing(await _views(session, rows), counts)
