"""Languages: which one a page is in, switching it, right-to-left layout, locale formatting,
and catalogues that are complete and whose placeholders match the English."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.pages import csrf_of, html_tag
from tests.fixtures.people import invite
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import Role, User
from web import i18n
from web.services import Services

LOCALE_DIR = Path(i18n.__file__).parent / "locale"
ROOT = LOCALE_DIR.parent.parent
TRANSLATED = sorted(set(i18n.LANGUAGES) - {i18n.DEFAULT})
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fa-IR,fa;q=0.9,en;q=0.8", "fa"),
        ("de-DE, ja;q=0.5, he;q=0.7", "he"),
        ("zh-Hans-CN", "zh"),
        ("de, fr", None),
        ("fa;q=0, ja", "ja"),
        ("en;q=abc, he", "he"),
        ("", None),
    ],
)
def test_accept_language_picks_the_best_supported_language(
    header: str, expected: str | None
) -> None:
    assert i18n.from_accept_language(header) == expected


def test_sizes_and_dates_are_written_the_way_each_language_writes_them() -> None:
    assert i18n.format_size(1_234_567, "en") == "1.2\u00a0MB"
    assert i18n.format_size(999, "en") == "999\u00a0B"
    assert i18n.format_size(5 * 1024**3, "en") == "5.4\u00a0GB"
    # Persian uses its own digits and decimal separator; right-to-left languages name the unit
    # in their own script, so it stays after the number instead of a Latin "MB" that the bidi
    # algorithm would show before it.
    assert i18n.format_size(1_234_567, "fa") == "۱٫۲ مگابایت"
    assert i18n.format_size(2_300, "fa") == "۲٫۳ کیلوبایت"
    assert i18n.format_size(2_300, "he") == "2.3 קילו-בייט"
    moment = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)
    # Tehran is UTC+03:30: the next day there.
    assert i18n.format_moment(moment, "ja", "Asia/Tehran") == "2026/03/21 3:00"
    assert i18n.format_moment(moment, "zh", "Asia/Tehran") == "2026年3月21日 03:00"
    # Persian dates are Solar Hijri: 21 March 2026 in Tehran is Nowruz, 1 Farvardin 1405.
    assert i18n.format_moment(moment, "fa", "Asia/Tehran").startswith("۱ فروردین ۱۴۰۵")
    assert i18n.format_day(date(2026, 12, 4), "fa", "long") == "جمعه ۱۳ آذر ۱۴۰۵"
    assert i18n.format_day(date(2026, 12, 4), "fa", "short") == "۱۴۰۵/۰۹/۱۳"
    gregorian = i18n.format_moment(moment, "fa", "Asia/Tehran", gregorian=True)
    assert gregorian.startswith("۲۱ مارس ۲۰۲۶")
    assert i18n.format_moment(moment, "en", "Asia/Tehran") == "Mar 21, 2026, 3:00\u202fAM"
    assert i18n.format_number(1234, "fa") == "۱٬۲۳۴"
    # A naive moment is UTC (as SQLite returns them); an unknown zone falls back to UTC.
    naive = moment.replace(tzinfo=None)
    assert i18n.format_moment(naive, "en", "Not/AZone") == "Mar 20, 2026, 11:30\u202fPM"


async def test_the_browser_language_decides_until_one_is_chosen(http: httpx.AsyncClient) -> None:
    page = await http.get("/login", headers={"Accept-Language": "fa-IR,fa;q=0.9"})
    assert html_tag(page.text) == '<html lang="fa" dir="rtl">'
    page = await http.get("/login", headers={"Accept-Language": "ja"})
    assert html_tag(page.text) == '<html lang="ja" dir="ltr">'
    chosen = await http.post(
        "/language", data={"lang": "he", "next": "/reset"}, headers={"Accept-Language": "ja"}
    )
    assert chosen.status_code == 303 and chosen.headers["location"] == "/reset"
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=he;") and "HttpOnly" in cookie
    page = await http.get("/login", headers={"Accept-Language": "ja"})
    assert html_tag(page.text) == '<html lang="he" dir="rtl">'


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "x"])
async def test_the_language_switch_is_not_an_open_redirect(
    http: httpx.AsyncClient, target: str
) -> None:
    chosen = await http.post("/language", data={"lang": "fa", "next": target})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/"


async def test_an_unknown_language_is_refused(http: httpx.AsyncClient) -> None:
    refused = await http.post("/language", data={"lang": "xx", "next": "/"})
    assert refused.status_code == 400
    assert i18n.COOKIE not in refused.headers.get("set-cookie", "")


async def test_a_signed_in_choice_is_kept_in_the_profile_and_needs_the_csrf_token(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    await sign_in(http, alice)
    home = await http.get("/")
    refused = await http.post("/language", data={"lang": "fa", "next": "/"})
    assert refused.status_code == 403
    chosen = await http.post(
        "/language", data={"lang": "fa", "next": "/", "csrf_token": csrf_of(home.text)}
    )
    assert chosen.status_code == 303
    async with transaction(services.sessions) as session:
        user = (await session.execute(select(User).where(User.id == alice.id))).scalar_one()
    assert user.locale == "fa"
    # The profile wins over the browser's own preference, on any device.
    http.cookies.delete(i18n.COOKIE)
    page = await http.get("/", headers={"Accept-Language": "en"})
    assert html_tag(page.text) == '<html lang="fa" dir="rtl">'


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The messages the code holds now, extracted by scripts/i18n, so that a template left
    stale cannot hide a missing translation."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run([ROOT / "scripts" / "i18n", "--extract-to", pot], check=True)
    return pot


def test_the_template_holds_every_message_of_the_code(extracted: Path) -> None:
    with extracted.open("rb") as source:
        now = {m.id for m in read_po(source) if m.id}
    with (LOCALE_DIR / "messages.pot").open("rb") as source:
        committed = {m.id for m in read_po(source) if m.id}
    assert now == committed, "run scripts/i18n"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_catalogue_translates_every_message_with_the_same_placeholders(
    lang: str, extracted: Path
) -> None:
    with extracted.open("rb") as source:
        template = read_po(source)
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=lang)
    expected = {m.id for m in template if m.id}
    present = {m.id for m in catalog if m.id}
    assert expected - present == set(), f"{lang}: run scripts/i18n"
    missing: list[str] = []
    wrong: list[tuple[str, str]] = []
    for message in catalog:
        if not message.id:
            continue
        ids = [str(i) for i in (message.id if isinstance(message.id, tuple) else (message.id,))]
        raw = message.string if isinstance(message.string, tuple) else (message.string,)
        strings = [str(text or "") for text in raw]
        if message.fuzzy or not all(strings):
            missing.append(ids[0])
            continue
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != wanted:
                wrong.append((ids[0], text))
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:5]}"
    assert not wrong, f"{lang}: placeholders differ: {wrong[:5]}"


async def test_an_invitee_keeps_the_language_their_browser_asked_for(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    secret = await invite(services, "dara@example.test", Role.CLIENT, [world.acme])
    password = "quiet harbour lantern"
    done = await http.post(
        f"/invite/{secret}",
        data={"password": password, "password_confirm": password},
        headers={"Accept-Language": "fa-IR,fa;q=0.9,en;q=0.5"},
    )
    assert done.status_code == 303
    async with transaction(services.sessions) as session:
        user = (
            await session.execute(select(User).where(User.email == "dara@example.test"))
        ).scalar_one()
    assert user.locale == "fa"


async def test_persian_pages_date_in_solar_hijri_with_the_gregorian_date_on_hover(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        alice = (
            await session.execute(select(User).where(User.id == world["alice"].id))
        ).scalar_one()
        alice.locale = "fa"
    await sign_in(http, world["alice"])
    page = await http.get("/account")
    assert page.status_code == 200
    hover = re.search(r'<span title="([^"]+)">([^<]+)</span>', page.text)
    assert hover is not None, "no dated element on the account page"
    gregorian, shown = hover.groups()
    hijri_months = [
        "فروردین",
        "اردیبهشت",
        "خرداد",
        "تیر",
        "مرداد",
        "شهریور",
        "مهر",
        "آبان",
        "آذر",
        "دی",
        "بهمن",
        "اسفند",
    ]
    assert any(month in shown for month in hijri_months), shown
    assert "۱۴۰" in shown  # a Solar Hijri year in Persian digits
    assert "۲۰۲" in gregorian and not any(month in gregorian for month in hijri_months)
