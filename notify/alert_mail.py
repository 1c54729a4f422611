"""Alerts to auditors: evaluate the rules over new events, then put every alert not yet
emailed into one message per auditor, in the auditor's language, through the outbox.

The outbox delivers it like any other message (the notifier's worker claims it), so an
alert email is never lost by a crash: the alert and its `emailed_at`, and the queued
message, commit together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from notify.i18n import (
    N_,
    bdi,
    direction,
    format_number,
    isolate,
    language,
    translations,
)
from notify.render import new_message_id
from vault.audit import alerts
from vault.db import transaction
from vault.lookalikes import shown_name
from vault.models import Role, User
from vault.notifications import DeliveryState, Notification

log = logging.getLogger(__name__)

# What each alert rule is called, by rule name.
RULES: Mapping[str, str] = {
    "downloads": N_("Many downloads by one person"),
    "refusals": N_("Repeated refused requests"),
    "failed_signins": N_("A burst of failed sign-ins"),
    "new_address": N_("A sign-in from a new address"),
    "privilege": N_("A role or key change"),
}


def text(lang: str, rule: str) -> str:
    """The name of alert `rule` in `lang`."""
    return translations(language(lang)).gettext(RULES.get(rule, rule))


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body_text: str
    body_html: str


def compose(
    alerts_: Sequence[alerts.Alert], names: Mapping[str, str], *, locale: str, public_url: str
) -> Message:
    """One email listing `alerts_`, in the language of `locale`."""
    code = language(locale)
    _ = translations(code).gettext
    count = len(alerts_)
    subject = translations(code).ngettext(
        "ClientVault: %(count)s new alert", "ClientVault: %(count)s new alerts", count
    ) % {"count": format_number(count, code)}
    intro, footer = (
        _("The audit log raised these alerts:"),
        _("You receive this because you are an auditor of this portal."),
    )
    who_label, when_label, open_label = _("Who"), _("When"), _("See the events behind it")
    lines = [intro, ""]
    items: list[Markup] = []
    for alert in alerts_:
        who = names.get(alert.actor_id or "", "") or (alert.ip or "")
        link = f"{public_url.rstrip('/')}/audit/alerts/{alert.id}"
        lines += [
            f"- {text(code, alert.rule)}",
            f"  {who_label}: {isolate(who, code)}",
            f"  {when_label}: {alert.ts}",
            f"  {open_label}: {link}",
        ]
        # Names and addresses keep their own direction inside RTL text (<bdi>).
        items.append(
            Markup(
                "<li><strong>{rule}</strong><br>{who_label}: {who}<br>"
                '{when_label}: {when}<br><a href="{link}">{open}</a></li>'
            ).format(
                rule=text(code, alert.rule),
                who_label=who_label,
                who=bdi(who),
                when_label=when_label,
                when=bdi(alert.ts, direction="ltr"),
                link=link,
                open=open_label,
            )
        )
    lines += ["", footer]
    html = Markup(
        '<!doctype html><html lang="{lang}" dir="{dir}"><body><p>{intro}</p><ul>{items}</ul>'
        "<p>{footer}</p></body></html>"
    ).format(
        lang=code,
        dir=direction(code),
        intro=intro,
        items=Markup("").join(items),
        footer=footer,
    )
    return Message(subject, "\n".join(lines) + "\n", str(html))


def _user_id(actor_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(actor_id) if actor_id else None
    except ValueError:
        return None  # a non-user actor (`cli`, `system`) has no name to look up


async def queue(session: AsyncSession, *, now: datetime, public_url: str) -> int:
    """Put the alerts not yet emailed into one outbox message per active auditor; marks
    them emailed. The number of messages queued."""
    pending = await alerts.unsent(session)
    if not pending:
        return 0
    auditors = (
        (
            await session.execute(
                select(User).where(User.role == Role.AUDITOR, col(User.is_active).is_(True))
            )
        )
        .scalars()
        .all()
    )
    ids = {_user_id(a.actor_id) for a in pending} - {None}
    people = (
        (await session.execute(select(User).where(col(User.id).in_(ids)))).scalars().all()
        if ids
        else []
    )
    names = {str(p.id): shown_name(p.display_name, p.email, p.role) for p in people}
    for auditor in auditors:
        message = compose(pending, names, locale=auditor.locale, public_url=public_url)
        session.add(
            Notification(
                user_id=auditor.id,
                email=auditor.email,
                message_id=new_message_id(),
                subject=message.subject,
                body_text=message.body_text,
                body_html=message.body_html,
                seqs=json.dumps([a.seq for a in pending]),
                state=DeliveryState.PENDING,
                next_attempt_at=now,
            )
        )
    for alert in pending:
        alert.emailed_at = now
        session.add(alert)
    await session.flush()
    return len(auditors)


async def run_once(
    sessions: async_sessionmaker[AsyncSession],
    rules: alerts.Rules,
    *,
    public_url: str,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Evaluate the new events, then queue the emails: (alerts raised, messages queued)."""
    async with transaction(sessions) as session:
        raised = len(await alerts.evaluate(session, rules))
    async with transaction(sessions) as session:
        queued = await queue(session, now=now or datetime.now(UTC), public_url=public_url)
    return raised, queued


async def run(
    sessions: async_sessionmaker[AsyncSession],
    rules: alerts.Rules,
    *,
    public_url: str,
    interval_seconds: float = 10.0,
) -> None:
    """`run_once` every `interval_seconds` until cancelled; errors are logged, not fatal."""
    while True:
        try:
            await run_once(sessions, rules, public_url=public_url)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("alert run failed; retrying in %ss", interval_seconds)
        await asyncio.sleep(interval_seconds)
