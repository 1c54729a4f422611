"""The PDF report's own right-to-left layout: Arabic-script letters joined, lines in display
order by the Unicode bidi rules (UAX #9), and lines broken to fit."""

from __future__ import annotations

import unicodedata

import pytest

from web.pages import pdf_layout, pdf_script


@pytest.mark.parametrize("word", ["سارا احمدی", "گزارش دسترسی", "لاله", "پژوهش", "کلاس"])
def test_joined_letters_fold_back_to_the_letters(word: str) -> None:
    shaped = pdf_script.shape(word)
    assert shaped != word
    assert all(not "\u0600" <= ch <= "\u06ff" for ch in shaped)  # all presentation forms
    assert unicodedata.normalize("NFKC", shaped) == word


def test_each_letter_takes_its_place_in_the_word() -> None:
    names = [unicodedata.name(ch) for ch in pdf_script.shape("بیب")]
    assert names == [
        "ARABIC LETTER BEH INITIAL FORM",
        "ARABIC LETTER FARSI YEH MEDIAL FORM",
        "ARABIC LETTER BEH FINAL FORM",
    ]
    # Alef joins only to the letter before it; lam and alef make one ligature.
    assert [unicodedata.name(ch) for ch in pdf_script.shape("با")][1].endswith("FINAL FORM")
    assert pdf_script.shape("لا") == "\ufefb"
    # A zero-width non-joiner keeps two letters apart, and is not drawn.
    joined = [unicodedata.name(ch) for ch in pdf_script.shape("می\u200cخواهم")]
    assert joined[1] == "ARABIC LETTER FARSI YEH FINAL FORM"
    assert joined[2] == "ARABIC LETTER KHAH INITIAL FORM"


@pytest.mark.parametrize(
    ("logical", "rtl", "shown"),
    [
        ("Access report: שרה כהן", False, "Access report: ןהכ הרש"),
        # A bracket pair takes the direction of what comes before it (N0).
        ("Access report: שרה כהן (2025)", False, "Access report: (2025) ןהכ הרש"),
        ("דוח גישה: Acme", True, "Acme :השיג חוד"),
        ("דוח גישה: Acme 2025 (v3)", True, "Acme 2025 (v3) :השיג חוד"),
        # Inside a right-to-left run, brackets are mirrored and numbers keep their order.
        ("שרה (גרסה 12)", True, "(12 הסרג) הרש"),
        ("plain text", True, "plain text"),
        ("", True, ""),
    ],
)
def test_lines_are_laid_out_in_display_order(logical: str, rtl: bool, shown: str) -> None:
    assert pdf_script.visual(logical, rtl_base=rtl) == shown


def test_lines_fit_their_width_and_break_between_words_or_ideographs() -> None:
    text = "山田 花子 が Tax return 2025.pdf（バージョン 1）をダウンロードしました"
    lines = pdf_layout.lines(text, "ja", 8, 120)
    assert len(lines) > 1 and "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(pdf_layout.width(line, "ja", 8) <= 120 for line in lines)
    assert "Tax return 2025.pdf" in "".join(lines)  # a Latin word is never cut
    hebrew = pdf_layout.lines("שרה כהן הורידה את הקובץ", "he", 8, 40)
    assert all(" " not in (line[0], line[-1]) for line in hebrew)
