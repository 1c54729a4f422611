"""Notification emails speak every language of the pages, from the same catalogues: one list
of languages, and every string of the emails translated (a missing one would silently read
in English)."""

from __future__ import annotations

import pytest

from notify import i18n
from notify.alert_mail import RULES
from notify.render import VERBS, Item, render


@pytest.mark.parametrize("code", sorted(set(i18n.LANGUAGES) - {i18n.DEFAULT}))
def test_every_notification_word_is_translated(code: str) -> None:
    catalogue = i18n.translations(code)
    for message in [*VERBS.values(), *RULES.values(), "Changed"]:
        assert catalogue.gettext(message) != message, (code, message)


@pytest.mark.parametrize(
    ("given", "code"), [("fa-IR", "fa"), ("HE", "he"), ("xx", "en"), (None, "en")]
)
def test_a_locale_falls_back_to_english(given: str | None, code: str) -> None:
    assert i18n.language(given) == code


@pytest.mark.parametrize("code", ["ja", "zh"])
def test_east_asian_emails_are_left_to_right_with_western_digits(code: str) -> None:
    items = [
        Item(
            action="document.created",
            name=f"{n}.pdf",
            client="Acme",
            folder="Tax",
            who="Sam",
            when="today",
            link=f"https://files.example.test/documents/{n}",
        )
        for n in range(12)
    ]
    rendered = render(items, locale=code)
    assert i18n.direction(code) == "ltr"
    assert f'<html lang="{code}" dir="ltr">' in rendered.html
    assert "12" in rendered.subject
    assert i18n.translations(code).gettext("New document") in rendered.text


def test_persian_counts_in_persian_digits() -> None:
    item = Item(
        action="document.created",
        name="a.pdf",
        client="Acme",
        folder="Tax",
        who="Sam",
        when="today",
        link="https://files.example.test/documents/1",
    )
    assert "۲" in render([item, item], locale="fa").subject
