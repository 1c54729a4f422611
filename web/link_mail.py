"""Emails to a link's recipient: the one-time code they confirm (in the visitor's language),
and the link's address itself when staff ask for it (in the staff member's language).

Both go straight to the mailer, not through the notification outbox: the code and the token
are secrets and must not sit in the database in clear (as for invitations and resets).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

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
    return await _send(services, recipient, subject, lines, lang=lang, what="a link code")


async def send_link(
    services: Services,
    recipient: str,
    url: str,
    *,
    upload: bool,
    firm: str,
    sender: str,
    expires_at: datetime,
    password: bool,
    lang: str,
) -> bool:
    """Send the link's `url` to `recipient`; False (logged, never the url) when it cannot go
    out. `sender` is the staff member's name or address, as the recipient knows them."""
    _ = i18n.translations(lang).gettext
    values = {"firm": firm, "sender": sender}
    if upload:
        subject = _("%(firm)s asks you to send files") % values
        first = _("%(sender)s at %(firm)s asks you to send files through this link:") % values
    else:
        subject = _("%(firm)s shared files with you") % values
        first = _("%(sender)s at %(firm)s shared files with you through this link:") % values
    # The link works to the end of its last minute; the day is what the recipient needs.
    last_day = i18n.format_day((expires_at - timedelta(seconds=1)).date(), lang, "long")
    lines = [
        first,
        url,
        _("The link works until %(day)s (UTC).") % {"day": last_day},
        _("You will be asked for a code sent to this address before anything is shown."),
    ]
    if password:
        lines.append(_("It also needs a password, which %(sender)s gives you separately.") % values)
    lines.append(_("If you did not expect this email, ignore it."))
    return await _send(services, recipient, subject, lines, lang=lang, what="a link")


async def _send(
    services: Services, recipient: str, subject: str, lines: list[str], *, lang: str, what: str
) -> bool:
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
        logger.warning("could not send %s: %s", what, exc)
        return False
    return True
