"""Notification emails as recipients see them: MIME parts, links, languages, and the HTML
part rendered in a real browser (the system's Chromium), with screenshots kept as artifacts
in `$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from playwright.async_api import Browser

from notify import build_message, render
from notify.render import Item
from tests.fixtures.browser import artifacts

PUBLIC = "https://files.example.test"
UNSUBSCRIBE = f"{PUBLIC}/unsubscribe/dGVzdA.a2Vr.c2ln"

ITEMS = [
    Item(
        action="document.created",
        name="گزارش مالی ۱۴۰۵.pdf",
        client="Acme & Co",
        folder="Tax 2026",
        who="Sam Staff",
        when="2026-11-23 13:30 (Asia/Tehran)",
        link=f"{PUBLIC}/documents/3f1c0a7e-0000-4000-8000-000000000001",
        message="Please review and sign page 2.\nThank you!",
    ),
    Item(
        action="document.version_added",
        name="דוח שנתי.xlsx",
        client="Acme & Co",
        folder="Tax 2026",
        who="Dana",
        when="2026-11-23 13:45 (Asia/Tehran)",
        link=f"{PUBLIC}/documents/3f1c0a7e-0000-4000-8000-000000000002",
    ),
    Item(
        action="document.deleted",
        name="old-draft.docx",
        client="Acme & Co",
        folder="Archive",
        who="Sam Staff",
        when="2026-11-23 14:00 (Asia/Tehran)",
        link=f"{PUBLIC}/documents/3f1c0a7e-0000-4000-8000-000000000003",
    ),
]
WORDS = {"en": "New document", "fa": "سند جدید", "he": "מסמך חדש"}


def delivered(locale: str) -> EmailMessage:
    """The email for `locale` as a mail client receives it: built, serialised, parsed."""
    rendered = render(ITEMS, locale=locale, unsubscribe_url=UNSUBSCRIBE)
    message = build_message(
        sender="ClientVault <no-reply@example.test>",
        recipient="alice@example.test",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id="<render-test@clientvault>",
        date=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        list_unsubscribe=UNSUBSCRIBE,
        language=locale,
    )
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize("locale", ["en", "fa", "he"])
def test_parts_links_and_direction(locale: str) -> None:
    message = delivered(locale)
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert message["Content-Language"] == locale
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    text, html = bodies(message)
    rtl = locale in ("fa", "he")
    assert f'<html lang="{locale}" dir="{"rtl" if rtl else "ltr"}">' in html
    assert ("text-align:right" in html) is rtl
    for item in ITEMS:
        assert item.name in text and item.link in text
        assert f'href="{item.link}"' in html
    assert WORDS[locale] in text and WORDS[locale] in html
    # Every link in either part leads to the portal's public URL, nowhere else.
    for url in re.findall(r"https?://[^\s\"<>]+", text + html):
        assert url.startswith(PUBLIC + "/"), url
    assert UNSUBSCRIBE in text and f'href="{UNSUBSCRIBE}"' in html
    subject = message["Subject"]
    assert subject.startswith("ClientVault: ") and not any(i.name in subject for i in ITEMS)


@pytest.mark.parametrize("locale", ["en", "fa", "he"])
async def test_html_email_in_chromium(browser: Browser, locale: str) -> None:
    _, html = bodies(delivered(locale))
    page = await browser.new_page(viewport={"width": 800, "height": 600})
    try:
        # Offline, as a mail client shows it: nothing may be fetched from anywhere.
        await page.route("**/*", lambda route: route.abort())
        await page.set_content(html, wait_until="load")
        shot = artifacts() / f"email-{locale}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        rtl = locale in ("fa", "he")
        direction = await page.evaluate("getComputedStyle(document.body).direction")
        assert direction == ("rtl" if rtl else "ltr")
        card = await page.locator("table").first.bounding_box()
        assert card is not None
        middle = card["x"] + card["width"] / 2
        for item in ITEMS:
            link = page.get_by_role("link", name=item.name)
            assert await link.is_visible()
            assert await link.get_attribute("href") == item.link
            box = await link.bounding_box()
            assert box is not None and box["width"] > 0
            # Right-aligned in Persian and Hebrew, left-aligned in English.
            if rtl:
                assert box["x"] > middle, (item.name, box, middle)
            else:
                assert box["x"] + box["width"] < middle, (item.name, box, middle)
        assert await page.get_by_text(WORDS[locale]).first.is_visible()
        assert await page.get_by_text("Please review and sign page 2.").is_visible()
    finally:
        await page.close()
