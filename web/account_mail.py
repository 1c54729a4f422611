"""Emails about the account itself: invitation, password reset, lockout, password changed.

They go straight to the mailer rather than through the notification outbox, because they
carry single-use links that must not sit in the database in clear.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notify import DeliveryError
from notify.render import build_message, new_message_id
from vault.models import User
from web.services import Services, build_mailer

logger = logging.getLogger(__name__)

_env = Environment(
    loader=PackageLoader("web", "templates/email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

_SUBJECTS = {
    "invitation": "You are invited to ClientVault",
    "reset": "Reset your ClientVault password",
    "lockout": "Sign-in to your ClientVault account was paused",
    "password-changed": "Your ClientVault password was changed",
}


def link(services: Services, path: str) -> str:
    return f"{services.settings.server.public_url}{path}"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def send(services: Services, template: str, user: User, **values: Any) -> None:
    """Render and send one account email. Raises DeliveryError when it cannot go out."""
    subject = _SUBJECTS[template]
    values = {"portal": "ClientVault", "subject": subject, **values}
    message = build_message(
        sender=services.settings.smtp.from_,
        recipient=user.email,
        subject=subject,
        text=_env.get_template(f"{template}.txt").render(**values),
        html=_env.get_template(f"{template}.html").render(**values),
        message_id=new_message_id(),
        date=datetime.now(UTC),
    )
    await build_mailer(services.settings).send(message)


async def send_quietly(services: Services, template: str, user: User, **values: Any) -> None:
    """`send` for background tasks, where nobody waits for the outcome: log a failure."""
    try:
        await send(services, template, user, **values)
    except DeliveryError as exc:
        logger.warning("could not send the %s email to user %s: %s", template, user.id, exc)
