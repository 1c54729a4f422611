"""Emails about the account itself: invitation, password reset, lockout, password changed,
second factor reset.

They go straight to the mailer rather than through the notification outbox, because they
carry single-use links that must not sit in the database in clear. Each is written in the
recipient's language from the same catalogues as the pages.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlmodel import col, select

from notify import DeliveryError
from notify.i18n import N_, bdi, isolate, language
from notify.render import build_message, new_message_id
from vault.db import transaction
from vault.models import Client, ClientAccess, User
from web import i18n
from web.services import Services, build_mailer

logger = logging.getLogger(__name__)

_SUBJECTS = {
    "invitation": N_("You are invited to ClientVault"),
    "reset": N_("Reset your ClientVault password"),
    "lockout": N_("Sign-in to your ClientVault account was paused"),
    "password-changed": N_("Your ClientVault password was changed"),
    "mfa-reset": N_("The two-step sign-in of your ClientVault account was reset"),
}
# Values typed by people (names) or written left to right (moments): each keeps its own
# direction inside a sentence of the other direction.
_ISOLATED = frozenset({"inviter", "clients", "by", "portal", "expires", "until", "when"})


@functools.cache
def _env(lang: str) -> Environment:
    env = Environment(
        loader=PackageLoader("web", "templates/email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def link(services: Services, path: str) -> str:
    return f"{services.settings.server.public_url}{path}"


def when(moment: datetime) -> datetime:
    """`moment` for an email: written in the recipient's language and time zone by `send`."""
    return moment.astimezone(UTC)


def _moment(moment: datetime, lang: str, zone: str) -> str:
    return f"{i18n.format_moment(moment, lang, zone)} ({zone})"


def _values(values: dict[str, Any], lang: str, *, html: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str) and name in _ISOLATED:
            shown[name] = bdi(value) if html else isolate(value, lang)
        else:
            shown[name] = value
    return shown


async def send(
    services: Services, template: str, user: User, *, lang: str | None = None, **values: Any
) -> None:
    """Render and send one account email in `lang` (by default the recipient's own
    language). Raises DeliveryError when it cannot go out."""
    code = language(lang or user.locale)
    subject = i18n.translations(code).gettext(_SUBJECTS[template])
    zone = user.timezone or "UTC"
    values = {
        name: _moment(value, code, zone) if isinstance(value, datetime) else value
        for name, value in values.items()
    }
    base = {
        "portal": "ClientVault",
        "subject": subject,
        "lang": code,
        "dir": i18n.direction(code),
        "start": "right" if code in i18n.RTL else "left",
        **values,
    }
    env = _env(code)
    message = build_message(
        sender=services.settings.smtp.from_,
        recipient=user.email,
        subject=subject,
        text=env.get_template(f"{template}.txt").render(**_values(base, code, html=False)),
        html=env.get_template(f"{template}.html").render(**_values(base, code, html=True)),
        message_id=new_message_id(),
        date=datetime.now(UTC),
        language=code,
    )
    await build_mailer(services.settings).send(message)


async def send_quietly(services: Services, template: str, user: User, **values: Any) -> None:
    """`send` for background tasks, where nobody waits for the outcome: log a failure."""
    try:
        await send(services, template, user, **values)
    except DeliveryError as exc:
        logger.warning("could not send the %s email to user %s: %s", template, user.id, exc)


async def send_invitation(
    services: Services,
    invitee: User,
    secret: str,
    *,
    inviter: User,
    valid_for: timedelta,
    lang: str | None = None,
) -> None:
    """Send the invitation link `secret` to `invitee`, after the invitation committed.

    The email names the clients the vault gave the invitee, read back from the database, not
    those the inviter asked for: admins and auditors are given none. Someone invited has
    never chosen a language, so it is written in `lang`, the one the inviter chose (by
    default the inviter's own). Raises DeliveryError when it cannot go out.
    """
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(Client.name)
            .join(ClientAccess, col(ClientAccess.client_id) == col(Client.id))
            .where(ClientAccess.user_id == invitee.id)
            .order_by(col(Client.name))
        )
        names = list(found.scalars().all())
    await send(
        services,
        "invitation",
        invitee,
        lang=lang or inviter.locale,
        inviter=inviter.display_name or inviter.email,
        clients=", ".join(names),
        link=link(services, f"/invite/{secret}"),
        expires=when(datetime.now(UTC) + valid_for),
    )
