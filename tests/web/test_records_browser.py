"""The records page and the storage shown to clients, in Debian's Chromium against a live
server: an administrator sets a quota, a retention policy and a legal hold with the forms,
then releases the hold; the client sees its storage on its folder page; the pages are also
looked at in Persian (right to left). Each page is saved at desktop and phone width as
`records-*.png` in `$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`), nothing may
scroll sideways on the phone, and axe-core finds no serious or critical violation."""

from __future__ import annotations

import itertools

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory

PASSWORD = "a long passphrase for the records walkthrough"


class Camera:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.numbers = itertools.count(1)

    async def shoot(self, name: str) -> None:
        await look_at(self.page, f"records-{next(self.numbers):02d}-{name}")


async def person(live: LiveApp, email: str, role: str, *clients: str) -> str:
    args = [a for c in clients for a in ("--client", c)]
    await live.cli(
        "user", "add", email, "--role", role, *args, "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    return (await live.cli("token", "create", email)).strip()


async def test_records_page_and_client_storage_in_chromium(
    browser: Browser, live_app: LiveAppFactory
) -> None:
    live = await live_app(
        config={
            # TOTP has its own walkthrough; here the administrator signs in with a password.
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "auditor",
            },
        }
    )
    client_id = await live.cli("client", "add", "Acme Ltd")
    admin_token, client_token = [
        await person(live, "ada@example.test", "admin"),
        await person(live, "carla@example.test", "client", "Acme Ltd"),
    ]
    async with live.http() as http:
        auth = {"Authorization": f"Bearer {admin_token}"}
        made = await http.post(
            "/api/v1/folders", json={"client_id": client_id, "name": "Tax 2026"}, headers=auth
        )
        folder_id = made.json()["id"]
        await http.post(
            "/api/v1/folders",
            json={"client_id": client_id, "name": "مدارک قدیمی", "parent_id": folder_id},
            headers=auth,
        )
        for n in range(3):
            stored = await http.put(
                f"/api/v1/folders/{folder_id}/files/ledger.csv",
                content=b"date,amount\n" * (200 + n),
                headers={"Authorization": f"Bearer {client_token}"},
            )
            assert stored.status_code in (200, 201), stored.text
    await live.cli("client", "quota", "Acme Ltd", "10000")

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    camera = Camera(page)
    await browser_sign_in(page, live.base_url, "ada@example.test", PASSWORD)
    records = f"{live.base_url}/admin/clients/{client_id}/records"
    await page.goto(f"{live.base_url}/clients/{client_id}")
    await page.get_by_role("link", name="Quota, retention and legal holds").click()
    await expect(page).to_have_url(records)
    await camera.shoot("empty")

    await page.fill("#quota", "8000")
    await page.get_by_role("button", name="Save quota").click()
    await expect(page.get_by_role("status")).to_contain_text("The quota was saved.")
    await page.fill("#keep-versions", "1")
    await page.get_by_role("button", name="Save policy").click()
    await expect(page.get_by_role("status")).to_contain_text("The retention policy was saved.")
    await expect(page.locator(".records-plan li")).to_have_count(2)
    await page.select_option("#hold-scope", label="Tax 2026")
    await page.fill("#hold-reason", "Tax inspection 2026, letter of 3 December")
    await page.get_by_role("button", name="Place hold").click()
    await expect(page.get_by_role("status")).to_contain_text("The legal hold is in place")
    await expect(page.locator(".records-plan li")).to_have_count(0)
    await camera.shoot("held")

    # Persian: the page mirrors, the folder name keeps its own direction.
    await page.select_option("#language-choice", "fa")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.locator("h2#holds-heading")).to_have_text("نگهداشت‌های قانونی")
    await camera.shoot("held-persian")
    await page.select_option("#language-choice", "en")
    await expect(page.locator("html")).to_have_attribute("dir", "ltr")

    await page.get_by_label("Reason for releasing").fill("Inspection closed")
    await page.get_by_role("button", name="Release hold").click()
    await expect(page.get_by_role("status")).to_contain_text("The legal hold was released.")
    await expect(page.locator(".records-plan li")).to_have_count(2)
    await camera.shoot("released")

    client_page = await context.new_page()
    await context.clear_cookies()
    client_camera = Camera(client_page)
    await browser_sign_in(client_page, live.base_url, "carla@example.test", PASSWORD)
    await client_page.goto(f"{live.base_url}/folders/{folder_id}")
    await expect(client_page.locator(".storage-usage")).to_contain_text("Storage used:")
    await expect(client_page.locator("#storage-meter")).to_have_attribute("max", "8000")
    await client_camera.shoot("client-folder")
    await client_page.select_option("#language-choice", "he")
    await expect(client_page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(client_page.locator(".storage-usage")).to_contain_text("אחסון בשימוש")
    await client_camera.shoot("client-folder-hebrew")
    # The records page does not exist for a client.
    response = await client_page.goto(records)
    assert response is not None and response.status == 404
    await context.close()
