"""Rendering of a recipient's batch into subject, text and HTML bodies, and the MIME message.

User-chosen strings (document, folder, client and user names, a publishing message) appear
only in bodies: HTML is autoescaped and the subject is fixed text with a count, so no name
can reach a header. The recipient's language decides the words and, for Persian and Hebrew,
a right-to-left layout.
"""

from __future__ import annotations

import email.policy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from notify.i18n import (
    N_,
    bdi,
    direction,
    format_number,
    isolate,
    language,
    translations,
    trusted,
)

# What each kind of change is called, by audit action; anything else is "Changed".
VERBS = {
    "document.created": N_("New document"),
    "document.version_added": N_("New version"),
    "document.deleted": N_("Moved to trash"),
    "document.restored": N_("Restored from trash"),
    "request.opened": N_("Document requested"),
    "request.submitted": N_("Submitted for a document request"),
    "request.answered": N_("Document request answered"),
    "request.reminder.due_soon": N_("Reminder: documents requested are due soon"),
    "request.reminder.overdue": N_("Reminder: documents requested are overdue"),
    "link.dropped": N_("Received through an upload link"),
    "quota.threshold": N_("Storage quota in use"),
}

_env = Environment(
    loader=PackageLoader("notify", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """Written on one line as given: folding a long RFC 2369 URL would turn it into
    RFC 2047 encoded-words, which mail providers do not decode in `List-Unsubscribe`.
    CR and LF are still refused when the header is set."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_headers = HeaderRegistry()
_headers.map_to_type("list-unsubscribe", _VerbatimHeader)
_POLICY = email.policy.default.clone(header_factory=_headers)


@dataclass(frozen=True, slots=True)
class Item:
    """One change as the email shows it: names only, never content or secrets."""

    action: str
    name: str
    client: str
    folder: str
    who: str
    when: str
    link: str
    message: str = ""  # a publishing message from staff, if any

    @property
    def verb(self) -> str:
        return VERBS.get(self.action, "Changed")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Line:
    """An item with its words in the recipient's language; `*_html` are already escaped."""

    verb: str
    name: str
    client: str
    folder: str
    link: str
    by_at: str
    by_at_html: Markup
    message_from: str
    message_lines: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "\n".join(self.message_lines)


def _one_line(value: str) -> str:
    """Names stay on one line in the text body too."""
    return " ".join(value.split())


def _message_lines(value: str) -> list[str]:
    lines = [" ".join(line.split()) for line in value.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _line(item: Item, code: str) -> _Line:
    tr = translations(code)
    who = _one_line(item.who)
    return _Line(
        verb=tr.gettext(VERBS.get(item.action, N_("Changed"))),
        name=_one_line(item.name),
        client=_one_line(item.client),
        folder=_one_line(item.folder),
        link=item.link,
        by_at=tr.gettext("By %(who)s, %(when)s") % {"who": isolate(who, code), "when": item.when},
        # Names keep their own direction inside the other language's text (<bdi>).
        by_at_html=trusted(tr.gettext("By %(who)s, %(when)s"))
        % {"who": bdi(who), "when": bdi(item.when)},
        message_from=tr.gettext("Message from %(who)s:") % {"who": isolate(who, code)},
        message_lines=_message_lines(item.message),
    )


def render(
    items: list[Item],
    *,
    locale: str = "en",
    client: str | None = None,
    unsubscribe_url: str = "",
) -> Rendered:
    """Subject and bodies for one recipient's batch about one client, in `locale`."""
    code = language(locale)
    tr = translations(code)
    lines = [_line(i, code) for i in items]
    count = len(lines)
    shown = format_number(count, code)
    client_name = _one_line(client if client is not None else (items[0].client if items else ""))
    intro = tr.ngettext(
        "%(count)s document change in %(client)s:",
        "%(count)s document changes in %(client)s:",
        count,
    )
    values = {
        "lang": code,
        "dir": direction(code),
        "start": "right" if direction(code) == "rtl" else "left",
        "items": lines,
        "subject": tr.ngettext(
            "ClientVault: %(count)s document change",
            "ClientVault: %(count)s document changes",
            count,
        )
        % {"count": shown},
        "intro": intro % {"count": shown, "client": isolate(client_name, code)},
        "intro_html": trusted(intro) % {"count": shown, "client": bdi(client_name)},
        "t_client": tr.gettext("Client"),
        "t_folder": tr.gettext("Folder"),
        "footer": tr.gettext(
            "You receive this because you have access to %(client)s in ClientVault."
        )
        % {"client": isolate(client_name, code)},
        "footer_html": trusted(
            tr.gettext("You receive this because you have access to %(client)s in ClientVault.")
        )
        % {"client": bdi(client_name)},
        "unsubscribe_text": tr.gettext("Stop these emails for %(client)s")
        % {"client": isolate(client_name, code)},
        "unsubscribe_html": trusted(tr.gettext("Stop these emails for %(client)s"))
        % {"client": bdi(client_name)},
        "unsubscribe_url": unsubscribe_url,
    }
    return Rendered(
        subject=str(values["subject"]),
        text=_env.get_template("changes.txt").render(values),
        html=_env.get_template("changes.html").render(values),
    )


def new_message_id() -> str:
    return f"<{uuid.uuid4()}@clientvault>"


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    list_unsubscribe: str = "",
    language: str = "",
) -> EmailMessage:
    """The MIME message (multipart/alternative); header values with CR/LF are refused.

    With `list_unsubscribe` (an https URL), the message offers RFC 8058 one-click unsubscribe.
    """
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date)
    message["Auto-Submitted"] = "auto-generated"
    if list_unsubscribe:
        message["List-Unsubscribe"] = f"<{list_unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if language:
        # After the parts: setting content clears every Content-* header.
        message["Content-Language"] = language
    return message
