"""The outbox: claiming due messages, recording outcomes, backoff and stuck-claim recovery.

Every outcome that ends a message is an audit event in the same transaction as the state
change: `notification.sent` (so "what did we tell this client, and when" has an answer) and
`notification.failed` for a permanent failure, which admins see and may retry.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from notify.feed import may_receive
from vault import audit, notifications
from vault.models import User
from vault.notifications import DeliveryState, Notification


@dataclass(frozen=True, slots=True)
class Claim:
    id: uuid.UUID
    token: str
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    locale: str
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
        user = await session.get(User, row.user_id)
        if user is None or (
            row.client_id is not None and not await may_receive(session, user, row.client_id)
        ):
            # Access is checked again at send time: it may have been revoked since rendering.
            row.state = DeliveryState.CANCELLED
            row.claim_token = None
            row.last_error = "the recipient can no longer see this client"
            session.add(row)
            continue
        row.email = user.email
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
                client_id=row.client_id,
                locale=user.locale,
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
    await notifications.record_sent(session, row)
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
        await notifications.record_failed(session, row, permanent=permanent)
    else:
        row.state = DeliveryState.PENDING
        row.next_attempt_at = now + backoff(row.attempts)
    session.add(row)
    await session.flush()
    return row.state


async def failed(
    session: AsyncSession, *, limit: int = 100, context: audit.AuditContext | None = None
) -> list[Notification]:
    """Messages that will not be retried by themselves, newest first (for admins); shown to
    someone (audited: they name recipients) when `context` is given."""
    rows = (
        (
            await session.execute(
                select(Notification)
                .where(Notification.state == DeliveryState.FAILED)
                .order_by(col(Notification.created_at).desc())
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if context is not None:
        await notifications.record_failed_listed(session, context, len(rows))
    return list(rows)


async def retry(
    session: AsyncSession, context: audit.AuditContext, notification_id: uuid.UUID, *, now: datetime
) -> Notification | None:
    """Queue a failed message again, with a fresh count of attempts; None unless it failed.

    The caller has checked that the actor may manage the outbox (admins)."""
    row = (
        await session.execute(
            select(Notification).where(Notification.id == notification_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.state != DeliveryState.FAILED:
        return None
    row.state = DeliveryState.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    session.add(row)
    await notifications.record_retried(session, context, row)
    return row
