"""The outbox: claiming due messages, recording outcomes, backoff and stuck-claim recovery."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.notifications import DeliveryState, Notification


@dataclass(frozen=True, slots=True)
class Claim:
    id: uuid.UUID
    token: str
    user_id: uuid.UUID
    email: str
    message_id: str
    subject: str
    body_text: str
    body_html: str
    created_at: datetime
    attempts: int


def backoff(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Exponential with jitter: half the delay is fixed, half random."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311


async def requeue_stuck(session: AsyncSession, *, now: datetime, stuck_after: timedelta) -> int:
    """Claims older than `stuck_after` (a killed worker) go back to pending."""
    result = await session.execute(
        update(Notification)
        .where(
            col(Notification.state) == DeliveryState.SENDING,
            col(Notification.claimed_at) <= now - stuck_after,
        )
        .values(state=DeliveryState.PENDING, claim_token=None, next_attempt_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def claim(session: AsyncSession, *, now: datetime, limit: int) -> list[Claim]:
    """Mark up to `limit` due pending messages as sending; other workers skip locked rows."""
    rows = (
        (
            await session.execute(
                select(Notification)
                .where(
                    Notification.state == DeliveryState.PENDING,
                    col(Notification.next_attempt_at) <= now,
                )
                .order_by(col(Notification.next_attempt_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    claims: list[Claim] = []
    for row in rows:
        row.state = DeliveryState.SENDING
        row.claimed_at = now
        row.claim_token = str(uuid.uuid4())
        row.attempts += 1
        session.add(row)
        claims.append(
            Claim(
                id=row.id,
                token=row.claim_token,
                user_id=row.user_id,
                email=row.email,
                message_id=row.message_id,
                subject=row.subject,
                body_text=row.body_text,
                body_html=row.body_html,
                created_at=row.created_at,
                attempts=row.attempts,
            )
        )
    await session.flush()
    return claims


async def _held(session: AsyncSession, claim: Claim) -> Notification | None:
    row = (
        await session.execute(
            select(Notification).where(Notification.id == claim.id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.state != DeliveryState.SENDING or row.claim_token != claim.token:
        return None  # the claim expired and another worker took over
    return row


async def mark_sent(session: AsyncSession, claim: Claim, *, now: datetime) -> bool:
    row = await _held(session, claim)
    if row is None:
        return False
    row.state = DeliveryState.SENT
    row.sent_at = now
    row.claim_token = None
    row.last_error = None
    session.add(row)
    await audit.record(
        session,
        audit.SYSTEM,
        "notification.sent",
        target_type="user",
        target_id=row.user_id,
        details={"recipient_id": str(row.user_id), "message_id": row.message_id},
    )
    return True


async def mark_failed(
    session: AsyncSession,
    claim: Claim,
    *,
    now: datetime,
    error: str,
    permanent: bool,
    max_attempts: int,
) -> DeliveryState | None:
    row = await _held(session, claim)
    if row is None:
        return None
    row.last_error = error[:1000]
    row.claim_token = None
    if permanent or row.attempts >= max_attempts:
        row.state = DeliveryState.FAILED
    else:
        row.state = DeliveryState.PENDING
        row.next_attempt_at = now + backoff(row.attempts)
    session.add(row)
    await session.flush()
    return row.state
