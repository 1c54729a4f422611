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

from notify.i18n import language
from notify.render import new_message_id
from vault import alerts
from vault.db import transaction
from vault.lookalikes import shown_name
from vault.models import Role, User
from vault.notifications import DeliveryState, Notification

log = logging.getLogger(__name__)

# The alert email's words; English is the source, and a language lacking a key falls back
# to it. `{count}` is written in the language's own digits.
STRINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "subject_one": "ClientVault: 1 new alert",
        "subject_many": "ClientVault: {count} new alerts",
        "intro": "The audit log raised these alerts:",
        "downloads": "Many downloads by one person",
        "refusals": "Repeated refused requests",
        "failed_signins": "A burst of failed sign-ins",
        "new_address": "A sign-in from a new address",
        "privilege": "A role or key change",
        "who": "Who",
        "when": "When",
        "open": "See the events behind it",
        "footer": "You receive this because you are an auditor of this portal.",
    },
    "fa": {
        "subject_one": "ClientVault: ۱ هشدار تازه",
        "subject_many": "ClientVault: {count} هشدار تازه",
        "intro": "گزارش ممیزی این هشدارها را داده است:",
        "downloads": "دریافت‌های فراوان به دست یک نفر",
        "refusals": "درخواست‌های ردشدهٔ پیاپی",
        "failed_signins": "ورودهای ناموفق پشت‌سرهم",
        "new_address": "ورود از نشانی‌ای تازه",
        "privilege": "تغییر نقش یا کلید",
        "who": "چه کسی",
        "when": "چه زمانی",
        "open": "رویدادهای پشت آن را ببینید",
        "footer": "این پیام را می‌گیرید چون ممیز این درگاه هستید.",
    },
    "he": {
        "subject_one": "ClientVault: התראה חדשה אחת",
        "subject_many": "ClientVault: {count} התראות חדשות",
        "intro": "יומן הביקורת העלה את ההתראות האלה:",
        "downloads": "הורדות רבות בידי אדם אחד",
        "refusals": "בקשות שנדחו שוב ושוב",
        "failed_signins": "רצף כניסות שנכשלו",
        "new_address": "כניסה מכתובת חדשה",
        "privilege": "שינוי תפקיד או מפתח",
        "who": "מי",
        "when": "מתי",
        "open": "לאירועים שמאחוריה",
        "footer": "הודעה זו נשלחה אליך כי את/ה מבקר/ת של הפורטל.",
    },
    "ja": {
        "subject_one": "ClientVault: 新しいアラート 1 件",
        "subject_many": "ClientVault: 新しいアラート {count} 件",
        "intro": "監査ログが次のアラートを出しました:",
        "downloads": "一人による大量のダウンロード",
        "refusals": "拒否されたリクエストの繰り返し",
        "failed_signins": "サインイン失敗の集中",
        "new_address": "新しいアドレスからのサインイン",
        "privilege": "ロールまたは鍵の変更",
        "who": "誰が",
        "when": "いつ",
        "open": "元のイベントを見る",
        "footer": "このポータルの監査担当者であるため、このメールをお送りしています。",
    },
    "zh": {
        "subject_one": "ClientVault：1 条新警报",
        "subject_many": "ClientVault：{count} 条新警报",
        "intro": "审计日志发出了以下警报：",
        "downloads": "一人大量下载",
        "refusals": "多次被拒绝的请求",
        "failed_signins": "登录失败激增",
        "new_address": "从新地址登录",
        "privilege": "角色或密钥变更",
        "who": "谁",
        "when": "时间",
        "open": "查看相关事件",
        "footer": "您收到此邮件，因为您是本门户的审计员。",
    },
}


def text(lang: str, key: str, **values: object) -> str:
    strings = STRINGS.get(lang, STRINGS["en"])
    return (strings.get(key) or STRINGS["en"][key]).format(**values)


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body_text: str
    body_html: str


def compose(
    alerts_: Sequence[alerts.Alert], names: Mapping[str, str], *, locale: str, public_url: str
) -> Message:
    """One email listing `alerts_`, in the language of `locale`."""
    lang = language(locale)
    code = lang.code if lang.code in STRINGS else "en"
    count = len(alerts_)
    subject = text(code, "subject_one" if count == 1 else "subject_many", count=lang.number(count))
    lines = [text(code, "intro"), ""]
    items: list[Markup] = []
    for alert in alerts_:
        who = names.get(alert.actor_id or "", "") or (alert.ip or "")
        link = f"{public_url.rstrip('/')}/audit/alerts/{alert.id}"
        lines += [
            f"- {text(code, alert.rule)}",
            f"  {text(code, 'who')}: {who}",
            f"  {text(code, 'when')}: {alert.ts}",
            f"  {text(code, 'open')}: {link}",
        ]
        # Names and addresses keep their own direction inside RTL text (<bdi>).
        items.append(
            Markup(
                "<li><strong>{rule}</strong><br>{who_label}: <bdi>{who}</bdi><br>"
                '{when_label}: <bdi dir="ltr">{when}</bdi><br><a href="{link}">{open}</a></li>'
            ).format(
                rule=text(code, alert.rule),
                who_label=text(code, "who"),
                who=who,
                when_label=text(code, "when"),
                when=alert.ts,
                link=link,
                open=text(code, "open"),
            )
        )
    lines += ["", text(code, "footer")]
    html = Markup(
        '<!doctype html><html lang="{lang}" dir="{dir}"><body><p>{intro}</p><ul>{items}</ul>'
        "<p>{footer}</p></body></html>"
    ).format(
        lang=lang.code,
        dir=lang.dir,
        intro=text(code, "intro"),
        items=Markup("").join(items),
        footer=text(code, "footer"),
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
