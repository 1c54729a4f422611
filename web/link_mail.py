"""The one-time code a link's recipient confirms, by email in the visitor's language.

It goes straight to the mailer, not through the notification outbox: the code is a secret
and must not sit in the database in clear (as for invitations and resets).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from markupsafe import escape

from notify import DeliveryError
from notify.render import build_message, new_message_id
from web import i18n
from web.services import Services, build_mailer

logger = logging.getLogger(__name__)


async def send_code(
    services: Services, recipient: str, code: str, *, firm: str, lang: str, minutes: int
) -> bool:
    """Send `code` to `recipient`; False (logged, never the code) when it cannot go out."""
    _ = i18n.translations(lang).gettext
    subject = _("Your code to open the files shared by %(firm)s") % {"firm": firm}
    lines = [
        _("Someone opened a link that %(firm)s shared with this address.") % {"firm": firm},
        _("Your code is: %(code)s") % {"code": code},
        _("It works once, for %(minutes)s minutes.") % {"minutes": minutes},
        _("If this was not you, ignore this email: without the code the link shows nothing."),
    ]
    direction = i18n.direction(lang)
    html = (
        f'<!doctype html><html lang="{lang}" dir="{direction}"><body>'
        + "".join(f"<p>{escape(line)}</p>" for line in lines)
        + "</body></html>"
    )
    message = build_message(
        sender=services.settings.smtp.from_,
        recipient=recipient,
        subject=subject,
        text="\n\n".join(lines) + "\n",
        html=html,
        message_id=new_message_id(),
        date=datetime.now(UTC),
        language=lang,
    )
    try:
        await build_mailer(services.settings).send(message)
    except DeliveryError as exc:
        logger.warning("could not send a link code: %s", exc)
        return False
    return True
