"""Error pages as a person sees them: a document that is not there, in English and in Persian,
at desktop and phone width, with the signed-in navigation, the status the API answers for the
same error (one mapping, `web.errors.status_for`), and nothing axe-core objects to."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Browser

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import PASSWORD, add_person


@pytest.mark.parametrize(("lang", "heading"), [("en", "Not found"), ("fa", "یافت نشد")])
async def test_a_missing_document_stays_in_the_app(
    live_app: LiveAppFactory, browser: Browser, lang: str, heading: str
) -> None:
    live = await live_app(config={"auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192}})
    await live.provision("Acme", "Inbox")
    client = await add_person(live, "alice@example.test", "client", "Acme")
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", bypass_csp=True)
    page = await context.new_page()
    await browser_sign_in(page, live.base_url, client.email, PASSWORD)
    if lang != "en":
        async with page.expect_navigation():
            await page.get_by_label("Language").select_option(lang)

    missing = await page.goto(f"{live.base_url}/documents/{uuid.uuid4()}")
    assert missing is not None and missing.status == 404
    assert heading in await page.get_by_role("heading", level=1).inner_text()
    assert await page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
    await look_at(page, f"error-missing-{lang}")
    assert await page.get_by_role("navigation").count() >= 1
    await context.close()
