"""The notifier's loop: feed → outbox → delivery. Several workers may run at once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import feed, outbox, reminders
from notify.i18n import language
from notify.links import UnsubscribeLinks
from notify.render import build_message
from notify.smtp import DeliveryError, Mailer
from vault.db import transaction
from vault.notifications import Cadence, Defaults, DeliveryState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    public_url: str
    links: UnsubscribeLinks  # signs the one-click unsubscribe link in every message
    sender: str = "ClientVault <no-reply@localhost>"
    batch_window_seconds: float = 60.0
    stuck_after_seconds: float = 600.0
    claim_limit: int = 50
    max_attempts: int = 10
    client_default_cadence: Cadence = Cadence.IMMEDIATE
    staff_default_cadence: Cadence = Cadence.EVERY_15_MINUTES
    daily_hour: int = 8
    reminder_days: int = 3  # an open document request is reminded this many days before due

    @property
    def defaults(self) -> Defaults:
        return Defaults(self.client_default_cadence, self.staff_default_cadence, self.daily_hour)


@dataclass(frozen=True, slots=True)
class RunResult:
    events: int = 0
    items: int = 0
    messages: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    reminders: int = 0


async def run_once(
    sessions: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    config: NotifyConfig,
    *,
    now: datetime | None = None,
) -> RunResult:
    """One pass: read new events, build due batches, deliver what is due."""
    moment = now or datetime.now(UTC)
    # Its own transaction, before the feed, so the reminders go out in this same pass.
    async with transaction(sessions) as session:
        reminded = await reminders.remind(session, now=moment, reminder_days=config.reminder_days)
    async with transaction(sessions) as session:
        events, items = await feed.collect(
            session,
            now=moment,
            batch_window_seconds=config.batch_window_seconds,
            defaults=config.defaults,
        )
        messages = await feed.build_due(
            session, now=moment, public_url=config.public_url, links=config.links
        )
    async with transaction(sessions) as session:
        await outbox.requeue_stuck(
            session, now=moment, stuck_after=timedelta(seconds=config.stuck_after_seconds)
        )
        claims = await outbox.claim(session, now=moment, limit=config.claim_limit)
    sent = retrying = failed = 0
    for claim in claims:
        message = build_message(
            sender=config.sender,
            recipient=claim.email,
            subject=claim.subject,
            text=claim.body_text,
            html=claim.body_html,
            message_id=claim.message_id,
            date=claim.created_at,
            list_unsubscribe=(
                config.links.url(claim.user_id, claim.client_id) if claim.client_id else ""
            ),
            # The language the text is really in (English where the user's has no catalogue).
            language=language(claim.locale),
        )
        try:
            await mailer.send(message)
        except DeliveryError as exc:
            async with transaction(sessions) as session:
                state = await outbox.mark_failed(
                    session,
                    claim,
                    now=moment,
                    error=str(exc),
                    permanent=exc.permanent,
                    max_attempts=config.max_attempts,
                )
            if state == DeliveryState.FAILED:
                failed += 1
                log.warning("notification %s failed permanently: %s", claim.message_id, exc)
            else:
                retrying += 1
            continue
        async with transaction(sessions) as session:
            await outbox.mark_sent(session, claim, now=moment)
        sent += 1
    return RunResult(events, items, messages, sent, retrying, failed, reminded)


async def run(
    sessions: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    config: NotifyConfig,
    *,
    interval_seconds: float = 5.0,
) -> None:
    """`run_once` every `interval_seconds` until cancelled; errors are logged, not fatal."""
    while True:
        try:
            await run_once(sessions, mailer, config)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification run failed; retrying in %ss", interval_seconds)
        await asyncio.sleep(interval_seconds)
