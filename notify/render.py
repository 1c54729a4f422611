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

from notify.i18n import Language, language

_VERBS = {
    "document.created": "New document",
    "document.version_added": "New version",
    "document.deleted": "Moved to trash",
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
        return _VERBS.get(self.action, "Changed")


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


def _bdi(value: str) -> Markup:
    # Isolates a name's direction, so a Hebrew file name in an English email (or the other
    # way round) does not reorder the words around it.
    return Markup("<bdi>{}</bdi>").format(value)


def _line(item: Item, lang: Language) -> _Line:
    who = _one_line(item.who)
    return _Line(
        verb=lang.strings.get(item.action) or lang.text("changed"),
        name=_one_line(item.name),
        client=_one_line(item.client),
        folder=_one_line(item.folder),
        link=item.link,
        by_at=lang.text("by_at", who=who, when=item.when),
        by_at_html=lang.html("by_at", who=_bdi(who), when=item.when),
        message_from=lang.text("message_from", who=who),
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
    lang = language(locale)
    lines = [_line(i, lang) for i in items]
    count = len(lines)
    client_name = _one_line(client if client is not None else (items[0].client if items else ""))
    values = {
        "lang": lang.code,
        "dir": lang.dir,
        "start": "right" if lang.rtl else "left",
        "items": lines,
        "subject": lang.count("subject", count),
        "intro": lang.count("intro", count, client=client_name),
        "intro_html": lang.count("intro", count, as_html=True, client=_bdi(client_name)),
        "t_client": lang.text("client"),
        "t_folder": lang.text("folder"),
        "footer": lang.text("footer", client=client_name),
        "unsubscribe_text": lang.text("unsubscribe", client=client_name),
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
