"""The publish form's pickers and the account page's one notification form in Chromium, in
English and in Persian, at desktop and phone width: a staff member filters the clients, picks
a folder from the chosen clients' tree with the keyboard and publishes; then sets the email
cadence for all clients with one client set apart. axe-core finds nothing serious, nothing
scrolls sideways on the phone."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, FilePayload, Page, expect

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveUser
from tests.fixtures.portal import PASSWORD

STAFF = "pat@example.test"
CLIENTS = ("Acme", "Globex", "Initech", "Umbrella Holdings")


async def folder(
    live: LiveApp, admin: LiveUser, client_id: str, name: str, parent: str = ""
) -> str:
    body: dict[str, str] = {"client_id": client_id, "name": name}
    if parent:
        body["parent_id"] = parent
    async with live.http() as http:
        made = await http.post("/api/v1/folders", json=body, headers=admin.auth)
    assert made.status_code == 201, made.text
    folder_id: str = made.json()["id"]
    return folder_id


async def world(live: LiveApp) -> tuple[dict[str, str], LiveUser]:
    admin = await live.add_user("admin@example.test", role="admin")
    ids = {name: await live.add_client(name) for name in CLIENTS}
    reports = await folder(live, admin, ids["Acme"], "Reports")
    await folder(live, admin, ids["Acme"], "2025", reports)
    await folder(live, admin, ids["Acme"], "2026", reports)
    await folder(live, admin, ids["Globex"], "Reports")
    await folder(live, admin, ids["Initech"], "Tax")
    clients = [arg for name in CLIENTS for arg in ("--client", name)]
    await live.cli(
        "user", "add", STAFF, "--role", "staff", *clients, "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    return ids, admin


async def signed_in(browser: Browser, live: LiveApp, lang: str) -> Page:
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    await browser_sign_in(page, live.base_url, STAFF, PASSWORD)
    if lang != "en":
        async with page.expect_navigation():
            await page.get_by_label("Language").select_option(lang)
    return page


async def path_of(live: LiveApp, admin: LiveUser, folder_id: str) -> list[str]:
    names: list[str] = []
    async with live.http() as http:
        while folder_id:
            found = (await http.get(f"/api/v1/folders/{folder_id}", headers=admin.auth)).json()
            names.insert(0, found["name"])
            folder_id = found["parent_id"] or ""
    return names


@pytest.mark.parametrize("lang", ["en", "fa"])
async def test_staff_filter_clients_pick_a_folder_and_publish(
    live_app: LiveAppFactory, browser: Browser, lang: str
) -> None:
    live = await live_app(
        config={
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin,auditor",
            },
            "notify": {"worker": False},
        }
    )
    ids, admin = await world(live)
    page = await signed_in(browser, live, lang)
    await page.goto(f"{live.base_url}/publish")
    rtl = lang == "fa"

    # The enhanced pickers replace the plain select; the checkbox list stays.
    tree = page.get_by_role("tree")
    await expect(tree).to_be_visible()
    await expect(page.locator("#publish-folder")).to_be_hidden()
    count = page.locator("[data-client-count]")
    # The count is a sentence of the page's language, its number in the language's digits.
    words, digits = ("clients chosen", "02") if not rtl else ("مشتری انتخاب شد", "۰۲")
    await expect(count).to_have_text(re.compile(rf"^\W*{digits[0]}\W*{words}"))

    # Filter the clients and select all that are shown: only Globex.
    await page.locator("#client-filter").fill("glo")
    await expect(page.get_by_role("checkbox", name="Acme")).to_be_hidden()
    await page.locator("[data-select-shown]").click()
    await expect(page.get_by_role("checkbox", name="Globex")).to_be_checked()
    await page.locator("#client-filter").fill("zzz")
    await expect(page.locator("[data-no-match]")).to_be_visible()
    await page.locator("#client-filter").fill("")
    await page.get_by_role("checkbox", name="Acme").check()
    await expect(count).to_have_text(re.compile(rf"^\W*{digits[1]}\W*{words}"))

    # The tree holds the chosen clients' folders only: Initech's "Tax" is not shown.
    await expect(page.get_by_role("treeitem", name="Tax", exact=True)).to_be_hidden()
    reports = page.get_by_role("treeitem", name="Reports", exact=True)
    await expect(reports).to_have_attribute("aria-selected", "true")
    await reports.focus()
    await page.keyboard.press("ArrowLeft" if rtl else "ArrowRight")  # open it
    await expect(reports).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    # Its name is its row: the folder, and for how many chosen clients it is there.
    year = page.get_by_role("treeitem", name=re.compile(r"^2026"))
    await expect(year).to_have_attribute("aria-selected", "true")
    await expect(year).to_be_focused()
    assert await page.locator("#publish-folder").input_value() == "Reports/2026"
    summary = page.locator("[data-folder-summary]")
    if not rtl:
        await expect(summary).to_contain_text("Reports › 2026")
        await expect(summary).to_contain_text("1 of the 2 chosen clients")
        await expect(year).to_contain_text("1 of 2")
    await page.locator("#publish-message").fill("Your 2026 report")
    await look_at(page, f"publish-pickers-{lang}")

    await page.locator("#publish-files").set_input_files(
        files=FilePayload(name="report.pdf", mimeType="application/pdf", buffer=b"%PDF-1.7 x")
    )
    async with page.expect_navigation():
        await page.locator("form.card button[type=submit]").click()
    await expect(page.locator("#publish-results tbody tr")).to_have_count(2)

    for client in ("Acme", "Globex"):
        async with live.http() as http:
            found = (
                await http.get(
                    "/api/v1/audit",
                    params={"client_id": ids[client], "action": "document.created"},
                    headers=admin.auth,
                )
            ).json()["events"]
        [event] = found
        async with live.http() as http:
            document = (
                await http.get(f"/api/v1/documents/{event['target_id']}", headers=admin.auth)
            ).json()
        assert await path_of(live, admin, document["folder_id"]) == ["Reports", "2026"]
    await page.context.close()


@pytest.mark.parametrize("lang", ["en", "fa"])
async def test_one_form_sets_email_for_every_client_with_one_apart(
    live_app: LiveAppFactory, browser: Browser, lang: str
) -> None:
    live = await live_app(
        config={
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin,auditor",
            },
            "notify": {"worker": False},
        }
    )
    ids, _ = await world(live)
    page = await signed_in(browser, live, lang)
    await page.goto(f"{live.base_url}/account#notifications")

    shared = page.locator("#notify-cadence")
    await shared.select_option("hourly")
    # The hour is asked for only with "Once a day".
    await expect(page.locator("#notify-hour")).to_be_hidden()
    each = page.locator("details.notify-each")
    await expect(each).not_to_have_attribute("open", "")
    await each.locator("summary").click()
    own = page.locator(f"#cadence-{ids['Globex']}")
    await own.select_option("daily")
    await expect(page.locator(f"#hour-{ids['Globex']}")).to_be_visible()
    await page.locator(f"#hour-{ids['Globex']}").select_option("18")
    await expect(page.locator(f"#hour-{ids['Acme']}")).to_be_hidden()
    await look_at(page, f"account-notifications-{lang}")

    async with page.expect_navigation():
        await page.locator("form.notify-form button[type=submit]").click()
    await expect(page.locator(".notice--success")).to_be_visible()
    await expect(page.locator("details.notify-each")).to_have_attribute("open", "")
    assert await page.locator("#notify-cadence").input_value() == "hourly"
    assert await page.locator(f"#cadence-{ids['Globex']}").input_value() == "daily"
    assert await page.locator(f"#hour-{ids['Globex']}").input_value() == "18"
    assert await page.locator(f"#cadence-{ids['Acme']}").input_value() == ""
    await look_at(page, f"account-notifications-saved-{lang}")
    await page.context.close()
