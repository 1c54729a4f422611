"""Every language of the notification catalogue says everything English says, with the same
`str.format` fields: a missing key would silently fall back to English, and a missing or
renamed field would drop a value or raise KeyError when the email is built."""

from __future__ import annotations

from string import Formatter

import pytest

from notify.i18n import DEFAULT_LOCALE, LANGUAGES, language

ENGLISH = LANGUAGES[DEFAULT_LOCALE].strings


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_language_has_every_english_key_with_the_same_fields(code: str) -> None:
    strings = LANGUAGES[code].strings
    assert set(strings) >= set(ENGLISH), sorted(set(ENGLISH) - set(strings))
    for key, english in ENGLISH.items():
        assert strings[key].strip(), key
        wanted = fields(english)
        got = fields(strings[key])
        if key.endswith("_one"):
            # `Language.count` always passes `count`, so the singular may write the number
            # itself (Persian does, to show it in its own digits) where English spells "1".
            got -= {"count"}
        assert got == wanted, key


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_language_is_consistent_and_formats(code: str) -> None:
    lang = LANGUAGES[code]
    assert lang.code == code
    assert language(code) is lang
    assert len(lang.digits) == 10
    values = {"count": "3", "client": "Acme", "who": "Sam", "when": "today", "email": "a@b.test"}
    for key in ENGLISH:
        assert lang.text(key, **values)


@pytest.mark.parametrize("code", ["ja", "zh"])
def test_east_asian_languages_are_left_to_right_with_western_digits(code: str) -> None:
    lang = language(code)
    assert lang.code == code
    assert not lang.rtl
    assert lang.dir == "ltr"
    assert lang.number(2026) == "2026"
    assert lang.text("document.created") != ENGLISH["document.created"]
