"""Lines of text in any of the portal's scripts for the PDF report: a font per character,
lines broken in logical order, each line then drawn in display order (`pdf_script`).

The fonts: Vazirmatn (Latin, Arabic, Persian) and Noto Sans Hebrew, static instances of the
variable web fonts under web/static/fonts, shipped in web/fonts under the SIL Open Font
Licence; Chinese and Japanese use the CID fonts every PDF reader carries (no file embedded).
"""

from __future__ import annotations

import functools
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable

from web.pages import pdf_script

_DIR = Path(__file__).resolve().parent.parent / "fonts"
SANS, HEBREW = "ReportSans", "ReportHebrew"
_CJK = {"ja": "HeiseiMin-W3"}
_CJK_DEFAULT = "STSong-Light"
_FALLBACK = "Helvetica"


@functools.cache
def _sans_cmap() -> frozenset[int]:
    pdfmetrics.registerFont(TTFont(SANS, str(_DIR / "Vazirmatn-Regular.ttf")))
    pdfmetrics.registerFont(TTFont(HEBREW, str(_DIR / "NotoSansHebrew-Regular.ttf")))
    for name in (*_CJK.values(), _CJK_DEFAULT):
        pdfmetrics.registerFont(UnicodeCIDFont(name))
    font = pdfmetrics.getFont(SANS)
    assert isinstance(font, TTFont)
    return frozenset(font.face.charToGlyph)


def body_font() -> str:
    _sans_cmap()
    return SANS


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def font_for(ch: str, lang: str) -> str:
    sans = _sans_cmap()  # registers every font on first use
    if "\u0590" <= ch <= "\u05ff" or "\ufb1d" <= ch <= "\ufb4f":
        return HEBREW
    if _is_cjk(ch):
        return _CJK.get(lang, _CJK_DEFAULT)
    if ord(ch) in sans or ch.isspace():
        return SANS
    return _CJK.get(lang, _CJK_DEFAULT) if ord(ch) > 0x2000 else _FALLBACK


def _runs(text: str, lang: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for ch in text:
        # A space stays in the run it ends: fewer, longer runs extract as whole words.
        font = runs[-1][0] if runs and ch == " " else font_for(ch, lang)
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return runs


def width(text: str, lang: str, size: float) -> float:
    return float(sum(pdfmetrics.stringWidth(t, f, size) for f, t in _runs(text, lang)))


@functools.lru_cache(maxsize=8192)
def _advance(ch: str, lang: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(ch, font_for(ch, lang), size))


def lines(text: str, lang: str, size: float, room: float) -> list[str]:
    """`text` (logical order, joined letters) broken into lines no wider than `room`: after
    a space, or between two Chinese or Japanese characters, else wherever it must."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        start, used, cut = 0, 0.0, -1
        for i, ch in enumerate(paragraph):
            used += _advance(ch, lang, size)
            if used > room and i > start:
                end = cut if cut > start else i
                out.append(paragraph[start:end].rstrip())
                start = end
                while start < len(paragraph) and paragraph[start] == " ":
                    start += 1
                used = sum(_advance(c, lang, size) for c in paragraph[start : i + 1])
                cut = -1
            if ch == " " or _is_cjk(ch) or (i + 1 < len(paragraph) and _is_cjk(paragraph[i + 1])):
                cut = i + 1
        out.append(paragraph[start:])
    return out


class Text(Flowable):  # type: ignore[misc]
    """A paragraph in the report's direction: right-aligned lines for a right-to-left
    language, every line in display order."""

    def __init__(
        self, text: str, lang: str, *, size: float = 8, rtl: bool = False, right: bool = False
    ) -> None:
        super().__init__()
        self.text = pdf_script.shape(text, _sans_cmap())
        self.lang, self.size, self.rtl = lang, size, rtl
        self.right = rtl or right  # a time or an address, left to right in a right-aligned cell
        self.leading = size * 1.35
        self._lines: list[str] = []
        self._room = 0.0

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self._room = availWidth
        self._lines = lines(self.text, self.lang, self.size, availWidth)
        return availWidth, self.leading * len(self._lines)

    def draw(self) -> None:
        canvas = self.canv
        y = self.leading * len(self._lines) - self.size
        for line in self._lines:
            shown = pdf_script.visual(line, rtl_base=self.rtl)
            x = self._room - width(shown, self.lang, self.size) if self.right else 0.0
            for font, run in _runs(shown, self.lang):
                canvas.setFont(font, self.size)
                canvas.drawString(x, y, run)
                x += pdfmetrics.stringWidth(run, font, self.size)
            y -= self.leading
