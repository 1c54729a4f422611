"""The staff link forms and the console's link policy in Debian's Chromium against a live
server, in English and Persian (right to left): a document's form with its version choice, a
folder's form with the upload limits in MiB, a new link emailed to its recipient, and an
admin saving a client's link policy. Each page is saved at desktop and phone width as
`link-forms-*.png` in `$CLIENTVAULT_TEST_ARTIFACTS`; nothing may scroll sideways on the phone
and axe-core finds no serious or critical violation."""

from __future__ import annotations

import itertools

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory

PASSWORD = "a long passphrase for the link forms"


class Camera:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.numbers = itertools.count(1)

    async def shoot(self, name: str) -> None:
        await look_at(self.page, f"link-forms-{next(self.numbers):02d}-{name}")

    async def both(self, name: str) -> None:
        """The page in English, then in Persian (mirrored), then back."""
        await self.shoot(name)
        await self.page.select_option("#language-choice", "fa")
        await expect(self.page.locator("html")).to_have_attribute("dir", "rtl")
        await self.shoot(f"{name}-persian")
        await self.page.select_option("#language-choice", "en")
        await expect(self.page.locator("html")).to_have_attribute("dir", "ltr")


async def person(live: LiveApp, email: str, role: str, *clients: str) -> str:
    args = [a for c in clients for a in ("--client", c)]
    await live.cli(
        "user", "add", email, "--role", role, *args, "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    return (await live.cli("token", "create", email)).strip()


async def test_link_forms_and_the_link_policy_in_chromium(
    browser: Browser, live_app: LiveAppFactory
) -> None:
    live = await live_app(
        config={
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "auditor",
            },
            "links": {"firm_name": "Harbour & Co"},
        }
    )
    client_id = await live.cli("client", "add", "Acme Ltd")
    token = await person(live, "ada@example.test", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    async with live.http() as http:
        made = await http.post(
            "/api/v1/folders", json={"client_id": client_id, "name": "Tax 2026"}, headers=auth
        )
        folder_id = made.json()["id"]
        for n in range(2):
            stored = await http.put(
                f"/api/v1/folders/{folder_id}/files/ledger.csv",
                content=b"date,amount\n" * (200 + n),
                headers=auth,
            )
            assert stored.status_code in (200, 201), stored.text
        document_id = stored.json()["document_id"]

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    camera = Camera(page)
    await browser_sign_in(page, live.base_url, "ada@example.test", PASSWORD)

    await page.goto(f"{live.base_url}/documents/{document_id}#share-links")
    panel = page.locator("#share-links")
    await expect(panel.get_by_label("Version shared")).to_be_visible()
    await camera.both("document")
    await panel.get_by_label("Version shared").select_option("1")
    await panel.locator("#link-recipient").fill("bank@example.test")
    await panel.get_by_label("Email this link to the recipient").check()
    await panel.get_by_role("button", name="Create link").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "The link was emailed to bank@example.test."
    )
    await camera.shoot("created")
    # The same in Persian: the page is a POST's answer, so the language is chosen before it.
    await page.goto(f"{live.base_url}/documents/{document_id}#share-links")
    await page.select_option("#language-choice", "fa")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    panel = page.locator("#share-links")
    await panel.locator("summary").click()  # the form folds away once the page has links
    await panel.locator("#link-recipient").fill("bank@example.test")
    await panel.locator('input[name="send_to_recipient"]').check()
    await panel.locator('.share-form button[type="submit"]').click()
    await expect(page.get_by_role("status")).to_contain_text("bank@example.test")
    await camera.shoot("created-persian")
    await page.goto(f"{live.base_url}/")
    await page.select_option("#language-choice", "en")
    await expect(page.locator("html")).to_have_attribute("dir", "ltr")

    await page.goto(f"{live.base_url}/folders/{folder_id}#share-links")
    panel = page.locator("#share-links")
    await panel.get_by_label("Request files: the visitor uploads into this folder").check()
    await panel.locator("#link-max-file").fill("50")
    await panel.locator("#link-max-total").fill("200")
    await camera.both("folder")

    await page.goto(f"{live.base_url}/admin/clients/{client_id}")
    section = page.locator("#link-policy")
    await section.get_by_label("Every link needs a password").select_option("yes")
    await section.get_by_label(
        "Files dropped through a link are held for a malware scan"
    ).select_option("no")
    await section.get_by_role("button", name="Save the link policy").click()
    await expect(page.get_by_role("status")).to_contain_text("link policy was saved")
    await page.locator("#link-policy").scroll_into_view_if_needed()
    await camera.both("policy")
    await context.close()
