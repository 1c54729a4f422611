"""Filing in Debian's Chromium against a live server, in English and in Persian: staff pick
two documents and download them as one zip (names and bytes compared), move one to another
folder with the selection toolbar, rename a document on its page and rename and move a folder
from its header. Each page is looked at on a desktop (1366×900) and a phone (390×844):
axe-core finds nothing serious and nothing scrolls sideways. Screenshots go to
`$CLIENTVAULT_TEST_ARTIFACTS` as `filing-*.png`."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import PASSWORD, add_person, watch
from tests.fixtures.thumbnails import pdf

# The document page embeds a PDF preview: its "load" can take long on a busy machine, and
# what is checked after each form is the page's own markup.
LOADED: dict[str, Any] = {"wait_until": "domcontentloaded", "timeout": 60_000}
FILES = {
    "annual-report.pdf": pdf(400, 560),  # a real one: the listing shows its thumbnail
    "budget.xlsx": b"PK\x03\x04" + b"cells" * 100,
    "گزارش مالی.txt": "سلام".encode() * 50,
}


@pytest.mark.parametrize("lang", ["en", "fa"])
async def test_staff_select_zip_move_and_rename(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path, lang: str
) -> None:
    expect.set_options(timeout=20_000)
    live = await live_app(
        config={
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin,auditor",
            },
            # The listing's SVG icons are what this test looks at: no thumbnail is drawn
            # ahead to take the PDF's place (tests/web/test_thumbnail_listing_browser.py).
            "previews": {"worker": False},
        }
    )
    tenant = await live.provision("Acme", "Inbox")
    staff = await add_person(live, "sam@example.test", "staff", "Acme")
    ids: dict[str, str] = {}
    async with live.http() as http:
        for name, data in FILES.items():
            put = await http.put(
                f"/api/v1/folders/{tenant.folder_id}/files/{name}", content=data, headers=staff.auth
            )
            assert put.status_code == 201, put.text
            ids[name] = put.json()["document_id"]
        made = await http.post(
            "/api/v1/folders",
            json={"client_id": tenant.client_id, "parent_id": tenant.folder_id, "name": "Archive"},
            headers=staff.auth,
        )
        assert made.status_code == 201, made.text
        archive_id = made.json()["id"]
        await http.put(
            f"/api/v1/folders/{archive_id}/files/old.txt", content=b"old", headers=staff.auth
        )

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", accept_downloads=True)
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, staff.email, PASSWORD)
    if lang != "en":
        async with page.expect_navigation():
            await page.get_by_label("Language").select_option(lang)

    # The listing: SVG icons, the folder row's count, and a toolbar waiting for a selection.
    await page.goto(f"{live.base_url}/folders/{tenant.folder_id}")
    zip_button = page.locator('button[name="action"][value="zip"]')
    await expect(zip_button).to_be_disabled()
    assert await page.locator("svg.ficon--pdf").count() == 1
    assert await page.locator("svg.ficon--folder").count() == 1
    await look_at(page, f"filing-folder-{lang}")

    # Two documents as one zip.
    await page.locator(f'input[name="document_id"][value="{ids["annual-report.pdf"]}"]').check()
    await page.locator(f'input[name="document_id"][value="{ids["گزارش مالی.txt"]}"]').check()
    await expect(zip_button).to_be_enabled()
    await expect(page.locator("input[data-select-all]")).to_be_visible()
    async with page.expect_download() as waiting:
        await zip_button.click()
    download = await waiting.value
    saved = tmp_path / f"selection-{lang}.zip"
    await download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == sorted(["annual-report.pdf", "گزارش مالی.txt"])
        for name in archive.namelist():
            assert archive.read(name) == FILES[name]
    await look_at(page, f"filing-selected-{lang}")

    # Select all, then move one to Archive with the toolbar.
    await page.locator("input[data-select-all]").check()
    assert await page.locator('input[name="document_id"]:checked').count() == 3
    await page.locator("input[data-select-all]").uncheck()
    await page.locator(f'input[name="document_id"][value="{ids["budget.xlsx"]}"]').check()
    await page.locator("#selection-target").select_option(archive_id)
    async with page.expect_navigation(**LOADED):
        await page.locator('button[name="action"][value="move"]').click()
    await expect(page.locator(".notice--success")).to_be_visible()
    assert await page.locator(f'input[value="{ids["budget.xlsx"]}"]').count() == 0

    # Rename a document on its page.
    await page.goto(f"{live.base_url}/documents/{ids['annual-report.pdf']}")
    await page.locator("#rename-document").fill("Annual report 2026.pdf")
    async with page.expect_navigation(**LOADED):
        await page.locator('form[action$="/rename"] button[type="submit"]').click()
    await expect(page.locator(".notice--success")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Annual report 2026.pdf")
    await look_at(page, f"filing-document-{lang}")

    # A folder: renamed and moved to the top level from its own header.
    await page.goto(f"{live.base_url}/folders/{archive_id}")
    await page.locator("details.browse-organise summary").click()
    await look_at(page, f"filing-organise-{lang}")
    await page.locator("#rename-folder").fill("Archive 2026")
    async with page.expect_navigation(**LOADED):
        await page.locator('form[action$="/rename"] button[type="submit"]').click()
    await page.locator("details.browse-organise summary").click()
    await page.locator("#move-folder").select_option("")
    async with page.expect_navigation(**LOADED):
        await page.locator('form[action$="/move"] button[type="submit"]').click()
    await expect(page.locator(".notice--success")).to_be_visible()
    await page.goto(f"{live.base_url}/clients/{tenant.client_id}")
    await expect(page.locator("#folder-listing")).to_contain_text("Archive 2026")
    await look_at(page, f"filing-client-{lang}")

    async with live.http() as http:
        moved = await http.get(f"/api/v1/folders/{archive_id}", headers=staff.auth)
    body = moved.json()
    assert (body["name"], body["parent_id"]) == ("Archive 2026", None)
    assert sorted(d["name"] for d in body["documents"]) == ["budget.xlsx", "old.txt"]
    assert problems == []
    await context.close()
