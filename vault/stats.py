"""Figures an operator watches, read from the database when metrics are scraped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.models import AuditEvent, AuditHead, AuditTreeState, Cursor
from vault.notifications import DeliveryState, Notification
from vault.uploads import Upload, UploadState


@dataclass(frozen=True, slots=True)
class OperationalStats:
    """Backlogs: what is waiting, and for how long."""

    uploads_open: int
    outbox_depth: int
    outbox_oldest_age_seconds: float
    notifier_lag_events: int
    checkpoint_lag_events: int = 0
    checkpoint_lag_seconds: float = 0.0


async def operational_stats(
    session: AsyncSession, *, cursor: str, now: datetime | None = None
) -> OperationalStats:
    """Open resumable uploads, unsent emails (and the age of the oldest), and how many audit
    events the reader named `cursor` (the notifier) has yet to read."""
    now = now or datetime.now(UTC)
    uploads_open = (
        await session.execute(
            select(func.count()).select_from(Upload).where(Upload.state != UploadState.COMPLETE)
        )
    ).scalar_one()
    unsent = (DeliveryState.PENDING, DeliveryState.SENDING)
    depth, oldest = (
        await session.execute(
            select(func.count(), func.min(Notification.created_at)).where(
                col(Notification.state).in_(unsent)
            )
        )
    ).one()
    age = 0.0
    if oldest is not None:
        # SQLite hands back naive datetimes; every stored time is UTC.
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max(0.0, (now - oldest).total_seconds())
    head = (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar()
    read = (await session.execute(select(Cursor.seq).where(Cursor.name == cursor))).scalar()
    lag = max(0, (head or 0) - (read if read is not None else (head or 0)))
    # How far the log has run ahead of its newest signed checkpoint, in events and in the
    # age of the oldest event no checkpoint covers yet: a stuck checkpoint writer shows here.
    signed = (
        await session.execute(select(AuditTreeState.checkpoint_size).where(AuditTreeState.id == 1))
    ).scalar() or 0
    unsigned = max(0, (head or 0) - signed)
    unsigned_age = 0.0
    if unsigned:
        first = (
            await session.execute(select(AuditEvent.ts).where(AuditEvent.seq == signed + 1))
        ).scalar()
        if first is not None:
            since = datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            unsigned_age = max(0.0, (now - since).total_seconds())
    return OperationalStats(int(uploads_open), int(depth), age, lag, unsigned, unsigned_age)
