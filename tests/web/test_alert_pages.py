"""The alerts pages in Chromium against a live server whose own worker raises the alerts:
an auditor finds them at /audit/alerts, opens one to see the events behind it, in English,
Persian and Hebrew (mirrored), at desktop and phone width; axe finds no violation.
Screenshots `alerts-*.png` go to `$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import DESKTOP, axe_violations, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory

PASSWORD = "a long passphrase for the alerts pages"


async def start(live_app: LiveAppFactory) -> LiveApp:
    return await live_app(
        config={
            "alerts": {"interval_seconds": 0.5, "failed_signins_count": 3},
            # The auditor signs in with a password only here: TOTP has its own walkthrough.
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin",
            },
        }
    )


async def alerts_raised(live: LiveApp, token: str, count: int) -> list[dict[str, object]]:
    async with live.http() as http:
        for _ in range(100):
            found = await http.get(
                "/api/v1/audit/alerts", headers={"Authorization": f"Bearer {token}"}
            )
            alerts: list[dict[str, object]] = found.json()["alerts"]
            if len(alerts) >= count:
                return alerts
            await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} alerts were raised")


async def violations(page: Page) -> list[str]:
    """Every axe-core violation, of any impact: these pages are held to none at all."""
    return [f"{v['id']}: {v['help']}" for v in await axe_violations(page, impacts=None)]


async def shoot(page: Page, name: str) -> None:
    await look_at(page, f"alerts-{name}", axe=False)


async def test_an_auditor_reads_the_alerts_in_english_persian_and_hebrew(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live = await start(live_app)
    await live.cli(
        "user", "add", "otto@example.test", "--role", "auditor", "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    token = (await live.cli("token", "create", "otto@example.test")).strip()
    await live.cli("keys", "rotate")
    async with live.http() as http:
        for _ in range(3):
            wrong = {"email": "otto@example.test", "password": "not the passphrase at all"}
            refused = await http.post("/api/v1/session", json=wrong)
            assert refused.status_code in (400, 401, 429), refused.text
    alerts = await alerts_raised(live, token, 2)
    assert {a["rule"] for a in alerts} == {"privilege", "failed_signins"}

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(f"{live.base_url}/login")
    await page.fill("#email", "otto@example.test")
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{live.base_url}/")

    await page.goto(f"{live.base_url}/audit/alerts")
    await expect(page.locator("h1")).to_have_text("Alerts")
    await expect(page.locator("main")).to_contain_text("A burst of failed sign-ins")
    await expect(page.locator("main")).to_contain_text("A role or key change")
    assert await violations(page) == []
    await shoot(page, "01-list-en")

    await page.get_by_role("link", name="A role or key change").click()
    await expect(page.locator("main table")).to_contain_text("keys.rotated")
    assert await violations(page) == []
    await shoot(page, "02-alert-en")

    # Persian: the same pages, mirrored, the address still reading left to right.
    await page.goto(f"{live.base_url}/audit/alerts")
    await page.select_option("#language-choice", "fa")
    await page.wait_for_url(f"{live.base_url}/audit/alerts")
    html = page.locator("html")
    await expect(html).to_have_attribute("dir", "rtl")
    await expect(page.locator("h1")).to_have_text("هشدارها")
    await expect(page.locator("main")).to_contain_text("ورودهای ناموفق پشت‌سرهم")
    assert await violations(page) == []
    await shoot(page, "03-list-fa")
    await page.get_by_role("link", name="ورودهای ناموفق پشت‌سرهم").click()
    await expect(page.locator("main table")).to_contain_text("auth.login")
    assert await violations(page) == []
    await shoot(page, "04-alert-fa")

    # Hebrew: right to left as well, with its own words.
    await page.goto(f"{live.base_url}/audit/alerts")
    await page.select_option("#language-choice", "he")
    await page.wait_for_url(f"{live.base_url}/audit/alerts")
    await expect(html).to_have_attribute("dir", "rtl")
    await expect(html).to_have_attribute("lang", "he")
    await expect(page.locator("h1")).to_have_text("התראות")
    await expect(page.locator("main")).to_contain_text("שינוי תפקיד או מפתח")
    assert await violations(page) == []
    await shoot(page, "05-list-he")
    await page.get_by_role("link", name="שינוי תפקיד או מפתח").click()
    await expect(page.locator("main table")).to_contain_text("keys.rotated")
    assert await violations(page) == []
    await shoot(page, "06-alert-he")
    await context.close()

    # Anyone but auditors and admins finds no such page.
    async with httpx.AsyncClient(base_url=live.base_url) as anonymous:
        assert (await anonymous.get("/audit/alerts")).status_code == 303
