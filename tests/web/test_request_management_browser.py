"""How staff manage document requests, as a person sees it in Chromium: the filtered list,
one request's staff controls, the edit page, the templates page and a new request started
from a template, in English and Persian, at desktop and phone width, with nothing that
scrolls sideways on the phone and nothing axe-core objects to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory
from tests.fixtures.portal import PASSWORD

STAFF = "sam.staff@example.test"


async def ask(live: LiveApp, token: str, client_id: str, folder_id: str, **body: Any) -> str:
    async with live.http() as http:
        answer = await http.post(
            f"/api/v1/clients/{client_id}/requests",
            json={"folder_id": folder_id, **body},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 201, answer.text
    request_id: str = answer.json()["id"]
    return request_id


def day(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("lang", "heading"), [("en", "Document requests"), ("fa", None)])
async def test_staff_manage_requests_in_english_and_persian(
    live_app: LiveAppFactory, browser: Browser, lang: str, heading: str | None
) -> None:
    live = await live_app(config={"auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192}})
    acme = await live.provision("Acme Holdings", "Inbox")
    globex = await live.provision("گلوبکس", "صندوق")
    await live.cli(
        "user", "add", STAFF, "--role", "staff", "--client", "Acme Holdings",
        "--client", "گلوبکس", "--password-stdin", stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    token = (await live.cli("token", "create", STAFF)).strip()
    late = await ask(
        live, token, acme.client_id, acme.folder_id, title="Year-end tax pack 2026",
        due_date=day(0), items=["Bank statements, December", "Payroll summary", "Invoices"],
        message="Everything for the year-end accounts, please.",
    )  # fmt: skip
    await ask(
        live, token, globex.client_id, globex.folder_id, title="اظهارنامه مالیاتی",
        due_date=day(5), items=["صورت‌حساب بانکی"],
    )  # fmt: skip
    await ask(
        live, token, acme.client_id, acme.folder_id, title="Quarterly VAT return with a long title",
        due_date=day(60), items=["Sales ledger"],
    )  # fmt: skip
    async with live.http() as http:
        made = await http.post(
            "/api/v1/request-templates",
            json={"name": "Year-end tax pack", "title": "Year-end tax pack 2026",
                  "items": ["Bank statements", "Payroll summary"], "due_in_days": 30},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert made.status_code == 201, made.text
    template_id = made.json()["id"]

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", bypass_csp=True)
    page = await context.new_page()
    base = live.base_url
    await browser_sign_in(page, base, STAFF, PASSWORD, enrol=True)
    if lang != "en":
        async with page.expect_navigation():
            await page.get_by_label("Language").select_option(lang)
    assert await page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")

    await page.goto(f"{base}/requests?due=week")
    rows = page.locator("#requests-listing tbody tr")
    assert await rows.count() == 2
    if heading:
        assert heading in await page.get_by_role("heading", level=1).inner_text()
    await look_at(page, f"requests-list-week-{lang}")
    await page.goto(f"{base}/requests")
    await look_at(page, f"requests-list-{lang}")

    await page.goto(f"{base}/requests/{late}")
    await page.locator("form[action$='/remind'] button").click()
    await page.wait_for_url(f"{base}/requests/{late}?done=reminded")
    await look_at(page, f"request-staff-{lang}")

    await page.goto(f"{base}/requests/{late}/edit")
    await look_at(page, f"request-edit-{lang}")

    await page.goto(f"{base}/requests/templates")
    await look_at(page, f"request-templates-{lang}")

    await page.goto(f"{base}/requests/new?client={globex.client_id}&template={template_id}")
    assert await page.locator("#title").input_value() == "Year-end tax pack 2026"
    assert await page.locator("#due_date").input_value() == day(30)
    await page.locator("details.save-template summary").click()
    await look_at(page, f"request-new-template-{lang}")
    await context.close()
