"""The languages of pages and emails, and their gettext catalogues.

One list of languages and one set of catalogues for everything a person reads: the pages
(through `web.i18n`), notification emails and account emails. The catalogues are the `.po`
files that `scripts/i18n` keeps in `web/locale/`; they are data, found without importing
`web`, and compiled in memory when first used, so there is no build step and no `.mo` file.
"""

from __future__ import annotations

import functools
import io
from importlib.util import find_spec
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from markupsafe import Markup

# English is the source language; the others have a catalogue each.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "fa": "فارسی",
    "he": "עברית",
    "ja": "日本語",
    "zh": "中文",
}
RTL = frozenset({"fa", "he"})
DEFAULT = "en"
LOCALES = frozenset(LANGUAGES)


def _catalogues() -> Path:
    spec = find_spec("web")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the message catalogues (web/locale) are not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "locale"


def N_(message: str) -> str:
    """Marks `message` for the catalogue where it is translated later, by its English text."""
    return message


def supported(code: str | None) -> str | None:
    """`code` if it names a language we have, by its primary subtag (`fa-IR` → `fa`)."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def language(code: str | None) -> str:
    """The language `code` names ("fa", "fa-IR", "FA"), else English."""
    return supported(code) or DEFAULT


def direction(code: str) -> str:
    return "rtl" if code in RTL else "ltr"


@functools.cache
def translations(code: str) -> NullTranslations:
    if code not in LANGUAGES or code == DEFAULT:
        return NullTranslations()
    source = _catalogues() / code / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as po:
        catalog = read_po(po, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


# Babel formats with the locale's separators but always with ASCII digits; these are the
# numbering systems of our languages whose digits differ (Persian uses `arabext`).
_DIGITS = {"arabext": "۰۱۲۳۴۵۶۷۸۹", "arab": "٠١٢٣٤٥٦٧٨٩"}


def native_digits(text: str, locale: Locale) -> str:
    digits = _DIGITS.get(locale.default_numbering_system)
    return text.translate(str.maketrans("0123456789", digits)) if digits else text


def babel_locale(code: str) -> Locale:
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


def format_number(value: int, code: str) -> str:
    locale = babel_locale(code)
    return native_digits(format_decimal(value, locale=locale, numbering_system="default"), locale)


# Unicode's FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, the plain-text <bdi>.
_FSI, _PDI = "\u2068", "\u2069"


def isolate(value: str, code: str) -> str:
    """A name typed by someone, as it goes into a sentence of plain text: on a right-to-left
    text it keeps its own direction, so "Acme 2026" does not become "2026 Acme"."""
    return f"{_FSI}{value}{_PDI}" if code in RTL else value


def bdi(value: str, *, direction: str = "") -> Markup:
    """A name typed by someone, isolated in HTML (`<bdi>`), escaped."""
    if direction:
        return Markup('<bdi dir="{}">{}</bdi>').format(direction, value)
    return Markup("<bdi>{}</bdi>").format(value)


def trusted(text: str) -> Markup:
    """A sentence from our catalogue as HTML, ready for `%` with escaped values: the
    catalogue is trusted as the templates are (as Jinja's own i18n extension does)."""
    return Markup(text)  # noqa: S704
