"""Look-alike names (review item 11): invisible characters, TR39 confusables, display names."""

from __future__ import annotations

import unicodedata

import pytest

from tests.fixtures.lookalikes import LOOKALIKES, ORIGINAL
from vault.accounts.profiles import check_display_name
from vault.errors import InvalidNameError, ProfileError
from vault.lookalikes import _prototypes, confusable_with, find_invisible, shown_name, skeleton
from vault.models import Role
from vault.names import check_distinct, validate_name


@pytest.mark.parametrize(("name", "rule"), LOOKALIKES)
def test_every_lookalike_of_a_sibling_is_refused_with_its_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        check_distinct(validate_name(name), [ORIGINAL])
    assert caught.value.rule == rule
    assert "Invoice" not in caught.value.message  # never echoes the (hostile) name


@pytest.mark.parametrize(
    "name",
    [
        "Invoice 2026.pdf",
        "نامه\u200cها.docx",  # ZWNJ in Persian spelling
        "👩\u200d💻 team.zip",  # an emoji ZWJ sequence
        "❤\ufe0f\u200d🔥 notes.txt",  # emoji presentation selector, then a joiner
        "1\ufe0f\u20e3 first.txt",  # a keycap
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f.png",  # flag
        "葛\U000e0100飾区.pdf",  # an ideographic variation sequence
        "請求書\u30002026.pdf",  # ideographic space
    ],
)
def test_characters_real_text_needs_stay_allowed(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["a\u200db.txt", "a\u200cb.txt", "x\ufe0f.txt", "\u200d👩.txt", "tag\U000e0041.txt"],
)
def test_joiners_and_selectors_out_of_place_are_refused(name: str) -> None:
    assert find_invisible(name) is not None


def test_the_same_name_in_another_case_is_no_lookalike() -> None:
    # That is a new version of the same document, decided by name_key, not a refusal.
    check_distinct("INVOICE 2026.PDF", [ORIGINAL])
    assert confusable_with("Report.pdf", ["Invoice.pdf", "notes.txt"]) is None


def test_skeletons_follow_tr39() -> None:
    assert skeleton("Inv\u043eice") == skeleton("Invoice")
    assert skeleton("pa\u0443pal") == skeleton("paypal")
    assert skeleton("rn") == skeleton("m")
    assert skeleton("Invoice") != skeleton("Invoices")


def _skeleton_by_the_definition(text: str) -> str:
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in decomposed))


def test_skeletons_made_fast_are_the_skeletons_of_the_definition() -> None:
    # Every ASCII character (the bytes path), every mapped character and its neighbours
    # (the table, with its identity entries below U+0800), alone and in names.
    mapped = sorted(_prototypes())
    characters = [chr(c) for c in range(1, 0x900)] + mapped
    names = [
        *characters,
        "Invoice 2026.pdf",
        'l0g "m%" |I1`.txt',
        "rnmm 100% Ωmega Дом Müller שלום نامه.pdf",
        "".join(mapped[::7]),
    ]
    for name in names:
        assert skeleton(name) == _skeleton_by_the_definition(name), repr(name)


def test_display_names_refuse_invisible_characters() -> None:
    with pytest.raises(ProfileError, match="U\\+200B"):
        check_display_name("Sam\u200b Staff")
    assert check_display_name("Sam\u00a0 Staff") == "Sam Staff"  # spaces are collapsed


def test_only_the_firms_own_people_are_shown_by_display_name_alone() -> None:
    assert shown_name("Sam Staff", "sam@firm.example", Role.STAFF) == "Sam Staff"
    assert shown_name("Ada", "ada@firm.example", Role.ADMIN) == "Ada"
    assert (
        shown_name("staff@firm.example", "mallory@example.test", Role.CLIENT)
        == "staff@firm.example <mallory@example.test>"
    )
    assert shown_name("", "alice@example.test", Role.CLIENT) == "alice@example.test"
