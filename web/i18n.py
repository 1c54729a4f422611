"""Languages of the pages: which one a request gets, the gettext catalogues, and formatting of
dates, numbers and sizes by locale.

The languages and their catalogues are `notify.i18n`'s, shared with the emails; the `.po`
files stay here in `web/locale/`, where `scripts/i18n` extracts and updates them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import jdatetime
from babel.dates import (
    format_date,
    format_time,
    format_timedelta,
    get_timezone,
    get_timezone_location,
)
from babel.numbers import format_decimal
from babel.units import format_unit
from starlette.requests import Request

from notify import schedule
from notify.i18n import (
    DEFAULT,
    LANGUAGES,
    RTL,
    direction,
    format_number,
    supported,
    translations,
)
from notify.i18n import babel_locale as _locale
from notify.i18n import native_digits as _native_digits

__all__ = [
    "COOKIE",
    "COOKIE_MAX_AGE",
    "DEFAULT",
    "LANGUAGES",
    "RTL",
    "direction",
    "format_ago",
    "format_day",
    "format_moment",
    "format_number",
    "format_size",
    "from_accept_language",
    "negotiate",
    "supported",
    "translations",
    "zone_city",
]

COOKIE = "cv_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def from_accept_language(header: str) -> str | None:
    """The best supported language of an `Accept-Language` header (RFC 9110 §12.5.4)."""
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        code = supported(tag)
        if code and quality > 0:
            choices.append((-quality, position, code))
    return min(choices)[2] if choices else None


def negotiate(request: Request, user_locale: str | None = None) -> str:
    """A signed-in user's own choice; else the language cookie; else the browser's."""
    return (
        supported(user_locale)
        or supported(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("accept-language", ""))
        or DEFAULT
    )


def format_moment(
    moment: datetime | None,
    code: str,
    zone: str | None,
    form: str = "medium",
    *,
    gregorian: bool = False,
) -> str:
    """A moment in the user's time zone, written the way their language writes it (in the
    Solar Hijri calendar for Persian, unless `gregorian`)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they are stored in UTC
        moment = moment.replace(tzinfo=UTC)
    locale = _locale(code)
    local = moment.astimezone(schedule.zone(zone))
    # The date as `form` says, the time to the minute: seconds are noise in a file listing.
    day = format_date(local, form, locale=locale)
    if code in SOLAR_HIJRI and not gregorian:
        day = _solar_hijri(local.date(), form)
    time = format_time(local, "short", locale=locale)
    joined = str(locale.datetime_formats[form]).replace("{1}", day).replace("{0}", time)
    return _native_digits(joined, locale)


def format_day(
    day: date | None, code: str, form: str = "medium", *, gregorian: bool = False
) -> str:
    if day is None:
        return ""
    locale = _locale(code)
    if code in SOLAR_HIJRI and not gregorian:
        return _native_digits(_solar_hijri(day, form), locale)
    return _native_digits(format_date(day, form, locale=locale), locale)


# Languages whose pages date things in the Solar Hijri calendar, the civil calendar of Iran
# and Afghanistan; the Gregorian date stays one hover away.
SOLAR_HIJRI = frozenset({"fa"})


def _solar_hijri(day: date, form: str) -> str:
    solar = jdatetime.date.fromgregorian(date=day, locale="fa_IR")
    if form == "short":
        return f"{solar.year:04d}/{solar.month:02d}/{solar.day:02d}"
    written = f"{solar.day} {solar.j_months_fa[solar.month - 1]} {solar.year}"
    if form in ("long", "full"):
        return f"{solar.j_weekdays_fa[solar.weekday()]} {written}"
    return written


_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
_CLDR_UNITS = (
    "digital-byte",
    "digital-kilobyte",
    "digital-megabyte",
    "digital-gigabyte",
    "digital-terabyte",
)


def format_size(size: int | None, code: str) -> str:
    """A byte count in decimal units (as file managers show them), digits by locale."""
    if size is None:
        return ""
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_SIZE_UNITS) - 1:
        value /= 1000
        unit += 1
    pattern = "#,##0" if unit == 0 or value >= 100 else "#,##0.#"
    locale = _locale(code)
    digits = _native_digits(
        format_decimal(value, pattern, locale=locale, numbering_system="default"), locale
    )
    if code in RTL:
        # A Latin "KB" inside right-to-left text is a left-to-right island that the bidi
        # algorithm puts on the wrong side of its number; the language's own word is not.
        return format_unit(digits, _CLDR_UNITS[unit], length="long", locale=locale)
    return f"{digits}\u00a0{_SIZE_UNITS[unit]}"


def format_ago(moment: datetime | None, code: str, now: datetime | None = None) -> str:
    """How long ago `moment` was, as the language says it ("2 hours ago", "۲ ساعت پیش")."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    locale = _locale(code)
    elapsed = moment - (now or datetime.now(UTC))
    return _native_digits(
        format_timedelta(elapsed, add_direction=True, threshold=1.0, locale=locale), locale
    )


def zone_city(zone: str, code: str) -> str:
    """The city a time zone is named for, in the language (`Europe/Berlin` → "برلین")."""
    try:
        return str(
            get_timezone_location(get_timezone(zone), locale=_locale(code), return_city=True)
        )
    except (LookupError, ValueError):
        return zone
