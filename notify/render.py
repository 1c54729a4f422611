"""Rendering of a recipient's batch into subject, text and HTML bodies, and the MIME message.

User-chosen strings (document, folder, client and user names) appear only in bodies: HTML is
autoescaped and the subject is fixed text with a count, so no name can reach a header.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

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

    @property
    def verb(self) -> str:
        return _VERBS.get(self.action, "Changed")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _one_line(value: str) -> str:
    """Names stay on one line in the text body too."""
    return " ".join(value.split())


def render(items: list[Item]) -> Rendered:
    clean = [
        Item(
            action=i.action,
            name=_one_line(i.name),
            client=_one_line(i.client),
            folder=_one_line(i.folder),
            who=_one_line(i.who),
            when=i.when,
            link=i.link,
        )
        for i in items
    ]
    count = len(clean)
    subject = f"ClientVault: {count} document change{'s' if count != 1 else ''}"
    text = _env.get_template("changes.txt").render(items=clean, count=count)
    html = _env.get_template("changes.html").render(items=clean, count=count)
    return Rendered(subject=subject, text=text, html=html)


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
) -> EmailMessage:
    """The MIME message (multipart/alternative); header values with CR/LF are refused."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
