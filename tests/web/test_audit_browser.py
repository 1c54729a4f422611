"""An auditor, in Chromium, finds who downloaded a document, with names, in each of the five
languages. Every page is looked at (tests/fixtures/browser.py `look_at`) at desktop and phone
width, in English, Persian and Hebrew, with axe-core; the screenshots are `audit-*.png`.

Chromium is served by the app in process: each request the page makes is answered through a
test client of its own, which keeps the cookies the browser's sign-in sets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, Route
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.audit_trail import downloaded as downloaded
from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from vault.db import transaction
from vault.models import User
from web.services import Services

BASE = "http://testserver"
# The sentence of Alice's ranged read, as each language writes it.
RANGED = {
    "en": "Alice Example downloaded Tax return 2025.pdf (version 1, bytes 0–1,023)",
    "fa": "Alice Example Tax return 2025.pdf (نسخهٔ ۱، بایت‌های ۰ تا ۱٬۰۲۳) را دانلود کرد",
    "he": "Alice Example הוריד/ה את Tax return 2025.pdf (גרסה 1, בתים 0–1,023)",
    "ja": (
        "Alice Example が Tax return 2025.pdf（バージョン 1、バイト 0–1,023） "
        "をダウンロードしました"
    ),
    "zh": "Alice Example 下载了 Tax return 2025.pdf（第 1 版，字节 0–1,023）",
}
ISOLATES = str.maketrans("", "", "\u2068\u2069")


@pytest.fixture
async def page(browser: Browser, app: ASGIApp) -> AsyncIterator[Page]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        context = await browser.new_context(viewport=DESKTOP)

        async def through_the_app(route: Route) -> None:
            request = route.request
            answer = await http.request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items() if k.lower() != "cookie"},
                content=request.post_data_buffer,
            )
            await route.fulfill(
                status=answer.status_code, headers=dict(answer.headers), body=answer.content
            )

        await context.route(f"{BASE}/**", through_the_app)
        try:
            yield await context.new_page()
        finally:
            await context.close()


async def choose_language(page: Page, services: Services, user_id: object, code: str) -> None:
    """The auditor's language, as the footer's choice saves it (a redirect after a routed
    POST is not routed again by Playwright, so the profile is set directly), then reload."""
    async with transaction(services.sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.locale = code
    await page.reload()
    assert await page.get_attribute("html", "lang") == code


async def events_text(page: Page) -> str:
    return (await page.locator(".audit-events").inner_text()).translate(ISOLATES)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_auditor_finds_who_downloaded_a_document(
    page: Page,
    world: World,
    services: Services,
    downloaded: str,
) -> None:
    async with transaction(services.sessions) as session:
        otto = await session.get(User, world["otto"].id)
        assert otto is not None
        otto.display_name = "Otto Auditor"
    await browser_sign_in(page, BASE, world["otto"].email, world["otto"].password, enrol=True)

    # Home leads to the pages.
    await look_at(page, "audit-01-home-en")
    await page.get_by_role("link", name="Search the log").first.click()
    await page.wait_for_url(f"{BASE}/audit")

    # Search by a part of the document's name, among document events.
    await page.fill("#f-document", "tax return")
    await page.select_option("#f-group", "document")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(f"{BASE}/audit?**")
    found = await events_text(page)
    assert RANGED["en"] in found, found
    assert "alice@example.test" in found and "From 127.0.0.1" in found
    await look_at(page, "audit-02-search-en")

    # The document's access history: every read, by whom, when and from where.
    await page.get_by_role("link", name="Document history").first.click()
    await page.wait_for_url(f"{BASE}/audit/documents/{downloaded}")
    history = await events_text(page)
    assert RANGED["en"] in history
    assert "Alice Example downloaded Tax return 2025.pdf (version 1)" in history
    assert "Alice Example received the whole of Tax return 2025.pdf (version 1)" in history
    await look_at(page, "audit-03-document-en")

    # The same history in every language; Persian and Hebrew right to left.
    for code in ("fa", "he", "ja", "zh"):
        await choose_language(page, services, world["otto"].id, code)
        rtl = code in ("fa", "he")
        assert await page.get_attribute("html", "dir") == ("rtl" if rtl else "ltr")
        text = await events_text(page)
        assert RANGED[code] in text, (code, text)
        # The name is isolated, so it keeps its own direction inside the sentence.
        first = page.locator(".audit-event__what bdi").first
        assert await first.inner_text() == "Alice Example"
        if rtl:
            await look_at(page, f"audit-04-document-{code}")

    # A person's timeline, from the address under an event.
    await page.get_by_role("link", name="alice@example.test").first.click()
    await page.wait_for_url(f"{BASE}/audit/people/{world['alice'].id}")
    assert RANGED["zh"] in await events_text(page)
    for code in ("he", "fa", "en"):
        await choose_language(page, services, world["otto"].id, code)
        await look_at(page, f"audit-05-person-{code}")

    # The search and the report form, in each of the three.
    for code in ("en", "fa", "he"):
        await choose_language(page, services, world["otto"].id, code)
        await page.goto(f"{BASE}/audit?document=tax&group=document")
        await look_at(page, f"audit-06-search-{code}")
        await page.goto(f"{BASE}/audit/report")
        await look_at(page, f"audit-07-report-{code}")
