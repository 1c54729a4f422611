"""Several files for one request item, and a dropped folder's empty subfolders, in Chromium
against a live server: two files dropped on one item are both uploaded and listed in the
item's block, and the request's progress counts refresh without a reload; a folder tree
dropped on a folder page is recreated with its empty folders. Desktop and phone width, in
English and Persian, with axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveUser
from tests.fixtures.portal import DROP_SCRIPT, PASSWORD, add_person, watch

CONFIG = {"auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192}}

# A dropped folder as Chromium's file system entries give it: 2025/receipts/a.pdf, and the
# empty folders 2025/empty and 2025/outer/inner. Synthetic DataTransfer objects cannot hold
# folders, so the entries are built here with the same interface.
TREE_DROP_SCRIPT = """
([selector]) => {
  const fileEntry = (name, text) => {
    const file = new File([text], name, {type: "application/pdf", lastModified: 1700000000000});
    return {isFile: true, isDirectory: false, name, file: (ok) => ok(file)};
  };
  const folderEntry = (name, children) => ({
    isFile: false, isDirectory: true, name,
    createReader: () => {
      let given = false;
      return {readEntries: (ok) => { ok(given ? [] : children); given = true; }};
    },
  });
  const tree = folderEntry("2025", [
    folderEntry("receipts", [fileEntry("a.pdf", "%PDF receipt a")]),
    folderEntry("empty", []),
    folderEntry("outer", [folderEntry("inner", [])]),
  ]);
  const transfer = {
    types: ["Files"], files: [], dropEffect: "none",
    items: [{kind: "file", webkitGetAsEntry: () => tree, getAsFile: () => null}],
  };
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    const event = new DragEvent(type, {bubbles: true, cancelable: true});
    Object.defineProperty(event, "dataTransfer", {value: transfer});
    zone.dispatchEvent(event);
  }
}
"""


async def open_request(live: LiveApp, staff: LiveUser, client_id: str, folder_id: str) -> Any:
    async with live.http() as http:
        response = await http.post(
            f"/api/v1/clients/{client_id}/requests",
            json={
                "title": "Year end 2026",
                "due_date": (datetime.now(UTC).date() + timedelta(days=14)).isoformat(),
                "folder_id": folder_id,
                "items": ["Bank statements", "Payroll summary", "Receipts"],
                "message": "2025 year-end tax documents, please.",
            },
            headers=staff.auth,
        )
    assert response.status_code == 201, response.text
    return response.json()


async def choose_language(page: Page, lang: str) -> None:
    async with page.expect_navigation():
        await page.locator("#language-choice").select_option(lang)


async def wait_done(page: Page, name: str) -> None:
    row = page.locator(f'.upload-item[data-upload-name="{name}"]')
    await row.and_(page.locator('[data-state="done"]')).wait_for(timeout=60_000)


async def test_two_files_dropped_on_one_item_are_both_listed(
    live_app: LiveAppFactory, browser: Browser
) -> None:
    live = await live_app(config=CONFIG)
    tenant = await live.provision("Acme", "Inbox")
    client = await add_person(live, "clara@example.test", "client", "Acme")
    opened = await open_request(live, tenant.admin, tenant.client_id, tenant.folder_id)
    item_id = opened["items"][0]["id"]

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, client.email, PASSWORD)
    await page.goto(f"{live.base_url}/requests/{opened['id']}")
    panel = page.locator(f"#item-{item_id} [data-upload-panel]")
    await panel.and_(page.locator(".upload-panel--enhanced")).wait_for()
    progress = page.locator("#request-progress")
    await expect(progress).to_have_text("0 of 3 accepted")

    names = ["statement-january.pdf", "statement-february.pdf"]
    await page.evaluate(
        DROP_SCRIPT,
        [f"#item-{item_id} [data-upload-drop]", [(names[0], 3000, 1), (names[1], 5000, 2)]],
    )
    for name in names:
        await wait_done(page, name)
    # The item's block and the request's counts were fetched again: both files are listed.
    files = page.locator(f"#item-state-{item_id} [data-item-file]")
    await expect(files).to_have_count(2)
    for name in names:
        await expect(files.get_by_role("link", name=name)).to_be_visible()
    await expect(progress).to_have_text("0 of 3 accepted · 1 submitted")
    await look_at(page, "request-items-en")

    async with live.http() as http:
        answer = await http.get(f"/api/v1/requests/{opened['id']}", headers=tenant.admin.auth)
    item = next(i for i in answer.json()["items"] if i["id"] == item_id)
    assert item["status"] == "submitted"
    assert sorted(d["name"] for d in item["documents"]) == sorted(names)

    await choose_language(page, "fa")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await expect(page.locator(f"#item-state-{item_id} [data-item-file]")).to_have_count(2)
    await look_at(page, "request-items-fa")
    assert not problems, problems
    await context.close()


async def test_a_dropped_folders_empty_subfolders_are_made(
    live_app: LiveAppFactory, browser: Browser
) -> None:
    live = await live_app(config=CONFIG)
    tenant = await live.provision("Acme", "Inbox")
    staff = await add_person(live, "sam@example.test", "staff", "Acme")

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, staff.email, PASSWORD, enrol=True)
    await page.goto(f"{live.base_url}/folders/{tenant.folder_id}")
    await page.locator(".upload-panel--enhanced").wait_for()
    await page.evaluate(TREE_DROP_SCRIPT, [".empty-state"])
    await wait_done(page, "a.pdf")
    row = page.locator('.upload-item[data-upload-name="a.pdf"]')
    assert await row.get_attribute("data-upload-path") == "2025/receipts/a.pdf"
    await page.locator("#folder-listing").get_by_role("link", name="2025").wait_for()

    async def folder(folder_id: str) -> Any:
        async with live.http() as http:
            response = await http.get(f"/api/v1/folders/{folder_id}", headers=staff.auth)
        assert response.status_code == 200
        return response.json()

    def child(listing: Any, name: str) -> str:
        (found,) = [f["id"] for f in listing["folders"] if f["name"] == name]
        return str(found)

    year = await folder(child(await folder(tenant.folder_id), "2025"))
    assert sorted(f["name"] for f in year["folders"]) == ["empty", "outer", "receipts"]
    assert (await folder(child(year, "empty")))["folders"] == []
    outer = await folder(child(year, "outer"))
    assert [f["name"] for f in outer["folders"]] == ["inner"]
    receipts = await folder(child(year, "receipts"))
    assert [d["name"] for d in receipts["documents"]] == ["a.pdf"]
    assert not problems, problems
    await context.close()
