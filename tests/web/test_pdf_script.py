"""The PDF report's right-to-left text: Persian letters joined with the glyphs the shipped
font has, lines in display order with brackets mirrored, and lines broken to fit."""

from __future__ import annotations

import unicodedata

import pytest
from bidi import get_display

from web.pages import pdf_layout, pdf_script


def _names(text: str) -> list[str]:
    return [unicodedata.name(ch) for ch in pdf_script.shape(text, pdf_layout._sans_cmap())]


@pytest.mark.parametrize("word", ["سارا احمدی", "گزارش دسترسی", "لاله", "پژوهش", "کلاس"])
def test_joined_letters_are_in_the_font_and_fold_back_to_the_letters(word: str) -> None:
    cmap = pdf_layout._sans_cmap()
    shaped = pdf_script.shape(word, cmap)
    assert all(ord(ch) in cmap for ch in shaped)
    assert all(not "\u0600" <= ch <= "\u06ff" for ch in shaped)  # all presentation forms
    assert unicodedata.normalize("NFKC", shaped) == word


def test_lam_alef_is_one_glyph_and_a_non_joiner_keeps_letters_apart() -> None:
    assert _names("لا") == ["ARABIC LIGATURE LAM WITH ALEF ISOLATED FORM"]
    assert _names("سلام")[1] == "ARABIC LIGATURE LAM WITH ALEF FINAL FORM"
    joined = _names("می\u200cخواهم")
    assert joined[:4] == [
        "ARABIC LETTER MEEM INITIAL FORM",
        "ARABIC LETTER FARSI YEH FINAL FORM",
        "ZERO WIDTH NON-JOINER",  # kept, and drawn as nothing by Vazirmatn
        "ARABIC LETTER KHAH INITIAL FORM",
    ]
    assert pdf_layout.width("\u200c", "fa", 8) == 0


@pytest.mark.parametrize(
    ("logical", "rtl", "shown"),
    [
        ("Access report: שרה כהן", False, "Access report: ןהכ הרש"),
        # A bracket pair takes the direction of what comes before it (N0), and is mirrored.
        ("Access report: שרה כהן (2025)", False, "Access report: (2025) ןהכ הרש"),
        ("דוח גישה: Acme", True, "Acme :השיג חוד"),
        ("דוח גישה: Acme 2025 (v3)", True, "Acme 2025 (v3) :השיג חוד"),
        ("שרה (גרסה 12)", True, "(12 הסרג) הרש"),
        ("سارا (نسخه ۱) را", True, "ار (۱ هخسن) اراس"),
        ("plain text", True, "plain text"),
        ("", True, ""),
    ],
)
def test_lines_are_laid_out_in_display_order(logical: str, rtl: bool, shown: str) -> None:
    drawn = pdf_script.visual(logical, rtl_base=rtl)
    assert drawn == shown
    # The order is python-bidi's own (its display has brackets unmirrored).
    brackets = str.maketrans("()", "||")
    in_order = get_display(logical, base_dir="R" if rtl else "L")
    assert isinstance(in_order, str) and in_order.translate(brackets) == drawn.translate(brackets)


def test_lines_fit_their_width_and_break_between_words_or_ideographs() -> None:
    text = "山田 花子 が Tax return 2025.pdf（バージョン 1）をダウンロードしました"
    lines = pdf_layout.lines(text, "ja", 8, 120)
    assert len(lines) > 1 and "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(pdf_layout.width(line, "ja", 8) <= 120 for line in lines)
    assert "Tax return 2025.pdf" in "".join(lines)  # a Latin word is never cut
    hebrew = pdf_layout.lines("שרה כהן הורידה את הקובץ", "he", 8, 40)
    assert all(" " not in (line[0], line[-1]) for line in hebrew)
