"""The access report as a PDF (reportlab): what it covers, the checkpoint it was produced
against, and one line per event.

The PDF is in English, the language of record of the log's exports; names keep the script
they were typed in. reportlab lays text out left to right without bidi reordering, so a
Hebrew or Persian name shows its letters in stored (logical) order; the CSV report and the
pages show them correctly.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

from vault.audit.views import Shown
from web import audit_sentences

MAX_ROWS = 20_000  # past this the PDF says it is cut short; the CSV report has every row
# A font with Hebrew, Arabic and Cyrillic letters, where the system has one (Debian:
# fonts-dejavu-core); else the PDF's built-in Helvetica, Latin only.
_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)
_CJK = "STSong-Light"  # one of the CID fonts every PDF reader carries (no file embedded)


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


@functools.cache
def _fonts() -> tuple[str, str]:
    pdfmetrics.registerFont(UnicodeCIDFont(_CJK))
    for candidate in _FONT_PATHS:
        if Path(candidate).is_file():
            pdfmetrics.registerFont(TTFont("ReportSans", candidate))
            return "ReportSans", _CJK
    return "Helvetica", _CJK


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def _cell(text: str, style: ParagraphStyle) -> Paragraph:
    body, cjk = _fonts()
    font = cjk if _has_cjk(text) else body
    return Paragraph(f'<font name="{font}">{escape(text)}</font>', style)


def build(facts: Facts, rows: Sequence[Shown]) -> bytes:
    body, _ = _fonts()
    styles = getSampleStyleSheet()
    normal = ParagraphStyle("cell", parent=styles["Normal"], fontName=body, fontSize=8, leading=10)
    heading = ParagraphStyle("h", parent=styles["Heading1"], fontName=body)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        title=f"Access report: {facts.client}",
        author="ClientVault",
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
    )
    period = f"{facts.since or 'the beginning'} to {facts.until or 'today'}"
    story: list[object] = [
        Paragraph(f"Access report: {escape(facts.client)}", heading),
        _cell(f"Client: {facts.client}", normal),
        _cell(f"Days: {period} (inclusive)", normal),
        _cell(f"Produced {facts.produced_at:%Y-%m-%d %H:%M} UTC by {facts.produced_by}", normal),
        _cell(
            f"Events: {len(rows)}"
            + (" (cut short: use the CSV report)" if facts.truncated else ""),
            normal,
        ),
        Spacer(1, 4 * mm),
        _cell(
            f"Produced against the signed checkpoint of the audit log at tree size "
            f"{facts.tree_size}: every event below is in that tree, which the checkpoint's "
            "signature commits to (verify with the log's key, docs/audit-log.md).",
            normal,
        ),
        Preformatted(facts.checkpoint, ParagraphStyle("mono", fontName="Courier", fontSize=7)),
        Spacer(1, 4 * mm),
    ]
    table = [["#", "Time (UTC)", "Who", "What", "From", "Outcome"]]
    for row in rows:
        event, labels = row.event, row.labels
        who = " ".join(filter(None, [labels.get("actor_name"), labels.get("actor_email")]))
        what = audit_sentences.sentence(event, labels, "en", with_ip=False, isolate=False)
        if labels.get("labels_from") == "current":
            what += " [names as they are today]"
        table.append(
            [
                str(event.seq),
                event.ts.replace("T", " ").removesuffix("Z"),
                _cell(who or (event.actor_role or ""), normal),
                _cell(what, normal),
                event.ip or "",
                event.outcome,
            ]
        )
    grid = Table(
        table, repeatRows=1, colWidths=[14 * mm, 34 * mm, 55 * mm, 120 * mm, 28 * mm, 20 * mm]
    )
    grid.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), body),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eefc")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(grid)
    doc.build(story)
    return out.getvalue()
