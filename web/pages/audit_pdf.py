"""The access report as a PDF (reportlab): what it covers, the checkpoint it was produced
against, and one line per event, in the auditor's language.

Persian and Hebrew reports read right to left: the columns run from the right, and every
line is shaped and laid out in display order by `pdf_layout` and `pdf_script`; names keep
the script they were typed in, each in a font that has it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

from vault.audit.views import Shown
from web import audit_sentences, i18n
from web.pages.pdf_layout import Text, body_font

MAX_ROWS = 20_000  # past this the PDF says it is cut short; the CSV report has every row


def _(message: str) -> str:
    """Marks a string for extraction; it is translated when the report is built."""
    return message


TITLE = _("Access report: {client}")
CLIENT = _("Client: {client}")
DAYS = _("Days: {since} to {until} (inclusive)")
BEGINNING, TODAY = _("the beginning"), _("today")
PRODUCED = _("Produced {moment} UTC by {who}")
EVENTS = _("Events: {count}")
CUT_SHORT = _("(cut short: use the CSV report)")
AGAINST = _(
    "Produced against the signed checkpoint of the audit log at tree size {size}: every "
    "event below is in that tree, which the checkpoint's signature commits to (verify with "
    "the log's key, docs/audit-log.md)."
)
NAMES_TODAY = _("[names as they are today]")
COLUMNS = ("#", _("Time (UTC)"), _("Who"), _("What"), _("From"), _("Outcome"))
OUTCOMES = {
    "success": _("Succeeded"),
    "denied": _("Refused"),
    "failure": _("Failed"),
    "error": _("Error"),
    "locked": _("Locked out"),
}
_WIDTHS = (14 * mm, 34 * mm, 55 * mm, 120 * mm, 28 * mm, 20 * mm)


@dataclass(frozen=True, slots=True)
class Facts:
    client: str
    since: str
    until: str
    produced_by: str
    produced_at: datetime
    checkpoint: str
    tree_size: int
    truncated: bool
    lang: str = i18n.DEFAULT


def build(facts: Facts, rows: Sequence[Shown]) -> bytes:
    lang = facts.lang
    gettext = i18n.translations(lang).gettext
    rtl = i18n.direction(lang) == "rtl"

    def text(message: str, points: float = 8, **parts: object) -> Text:
        return Text(gettext(message).format(**parts), lang, size=points, rtl=rtl)

    def number(value: int) -> str:
        return i18n.format_number(value, lang)

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        title=gettext(TITLE).format(client=facts.client),
        author="ClientVault",
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
    )
    events = gettext(EVENTS).format(count=number(len(rows)))
    if facts.truncated:
        events += " " + gettext(CUT_SHORT)
    story: list[object] = [
        text(TITLE, 16, client=facts.client),
        Spacer(1, 3 * mm),
        text(CLIENT, client=facts.client),
        text(
            DAYS,
            since=facts.since or gettext(BEGINNING),
            until=facts.until or gettext(TODAY),
        ),
        text(PRODUCED, moment=f"{facts.produced_at:%Y-%m-%d %H:%M}", who=facts.produced_by),
        Text(events, lang, rtl=rtl),
        Spacer(1, 4 * mm),
        text(AGAINST, size=number(facts.tree_size)),
        Preformatted(facts.checkpoint, ParagraphStyle("mono", fontName="Courier", fontSize=7)),
        Spacer(1, 4 * mm),
    ]

    def cell(value: str) -> Text:
        return Text(value, lang, rtl=rtl)

    table: list[list[object]] = [[cell(gettext(c)) for c in COLUMNS]]
    for row in rows:
        event, labels = row.event, row.labels
        who = " ".join(filter(None, [labels.get("actor_name"), labels.get("actor_email")]))
        what = audit_sentences.sentence(event, labels, lang, with_ip=False, isolate=False)
        if labels.get("labels_from") == "current":
            what += " " + gettext(NAMES_TODAY)
        outcome = OUTCOMES.get(event.outcome)
        table.append(
            [
                cell(number(event.seq)),
                Text(event.ts.replace("T", " ").removesuffix("Z"), lang, right=rtl),
                cell(who or (event.actor_role or "")),
                cell(what),
                Text(event.ip or "", lang, right=rtl),
                cell(gettext(outcome) if outcome else event.outcome),
            ]
        )
    widths = list(_WIDTHS)
    if rtl:  # the first column on the right
        table = [list(reversed(r)) for r in table]
        widths.reverse()
    grid = Table(table, repeatRows=1, colWidths=widths)
    grid.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), body_font()),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eefc")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(grid)
    doc.build(story)
    return out.getvalue()
