"""The resumable uploader on every page that takes files, in Chromium against a live server:
a document request's item (progress, a reload mid-way that the page warns about, the upload
resumed to completion and its SHA-256 checked, the item submitted), and a folder page taking a
whole folder (its tree recreated) and a drop anywhere on the page, the empty state included.
Each at desktop and phone width, in English and Persian, with axe."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, Request, Route, expect

from tests.fixtures.browser import DESKTOP, artifacts, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveUser
from tests.fixtures.portal import DROP_SCRIPT, PASSWORD, add_person, watch

MiB = 1024 * 1024
PART = 5 * MiB
UPLOADS = "**/api/v1/uploads/*"
CONFIG = {
    "storage": {"part_size_mib": 5},
    "uploads": {"chunk_size_mib": 5},
    "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
}


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path` in pieces; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 8 * MiB))
            digest.update(piece)
            out.write(piece)
            left -= len(piece)
    return digest.hexdigest()


async def stored_sha256(live: LiveApp, user: LiveUser, document_id: str) -> str:
    digest = hashlib.sha256()
    async with live.http(timeout=600) as http:
        url = f"/api/v1/documents/{document_id}/content"
        async with http.stream("GET", url, headers=user.auth) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
    return digest.hexdigest()


async def open_request(live: LiveApp, staff: LiveUser, client_id: str, folder_id: str) -> Any:
    async with live.http() as http:
        response = await http.post(
            f"/api/v1/clients/{client_id}/requests",
            json={
                "title": "Year end 2026",
                "due_date": (datetime.now(UTC).date() + timedelta(days=14)).isoformat(),
                "folder_id": folder_id,
                "items": ["Bank statements", "Payroll summary"],
            },
            headers=staff.auth,
        )
    assert response.status_code == 201, response.text
    return response.json()


async def choose_language(page: Page, lang: str) -> None:
    async with page.expect_navigation():
        await page.locator("#language-choice").select_option(lang)


async def wait_state(page: Page, name: str, state: str, wait_ms: float) -> None:
    row = page.locator(f'.upload-item[data-upload-name="{name}"]')
    await row.and_(page.locator(f'[data-state="{state}"]')).wait_for(timeout=wait_ms)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(23 * MiB, id="23MiB"),
        pytest.param(300 * 1000 * 1000, id="300MB", marks=pytest.mark.slow),
    ],
)
async def test_a_request_item_upload_shows_progress_survives_a_reload_and_is_submitted(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path, size: int
) -> None:
    live = await live_app(config=CONFIG)
    tenant = await live.provision("Acme", "Inbox")
    client = await add_person(live, "clara@example.test", "client", "Acme")
    opened = await open_request(live, tenant.admin, tenant.client_id, tenant.folder_id)
    item_id = opened["items"][0]["id"]
    big = tmp_path / "statements 2026.bin"
    expected = await asyncio.to_thread(random_file, big, size)

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, client.email, PASSWORD)
    await page.goto(f"{live.base_url}/requests/{opened['id']}")
    panel = page.locator(f"#item-{item_id} [data-upload-panel]")
    await panel.and_(page.locator(".upload-panel--enhanced")).wait_for()
    assert not await panel.locator(".upload-submit").is_visible(), "the script took over"
    await look_at(page, "uploader-request-en")

    # Stopped after two chunks, with the bar part-way: the connection "drops" for good.
    blocked = asyncio.Event()

    async def block_later_chunks(route: Route, request: Request) -> None:
        if request.method == "PATCH" and int(request.headers.get("upload-offset", "0")) >= 2 * PART:
            blocked.set()
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route(UPLOADS, block_later_chunks)
    await page.set_input_files(f"#file-{item_id}", str(big))
    await asyncio.wait_for(blocked.wait(), 120)
    row = panel.locator(f'.upload-item[data-upload-name="{big.name}"]')
    bar = row.locator("progress")
    assert int(await bar.get_attribute("value") or 0) >= 2 * PART
    assert "of" in await row.locator(".upload-item__meta").inner_text()
    await expect(panel.locator("[data-upload-overall]")).to_be_visible()
    await page.screenshot(path=str(artifacts() / "request-progress.png"), full_page=True)

    # Leaving asks first while the upload runs; the person leaves anyway.
    dialogs: list[str] = []

    async def leave(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        await dialog.accept()

    page.on("dialog", leave)
    await page.reload()
    assert dialogs == ["beforeunload"]
    # The connection comes back only now: unblocked before the reload, the old page's own
    # retry of the dropped chunk could reach the server and still be storing when the new
    # page asks where to resume (an honest 409, recovered from, but noise in the console).
    await page.unroute(UPLOADS)
    resume = panel.locator(f'[data-upload-resume] [data-resume-name="{big.name}"]')
    await resume.wait_for()
    await page.screenshot(path=str(artifacts() / "request-unfinished.png"), full_page=True)

    offsets: list[int] = []
    page.on(
        "request",
        lambda request: (
            offsets.append(int(request.headers.get("upload-offset", "-1")))
            if request.method == "PATCH"
            else None
        ),
    )
    await page.set_input_files(f"#file-{item_id}", str(big))
    await wait_state(page, big.name, "done", wait_ms=900_000)
    assert offsets and offsets[0] >= 2 * PART, f"resumed, not restarted: {offsets[:3]}"
    # The item's state was fetched again: it is submitted, with the file.
    state = page.locator(f"#item-state-{item_id}")
    await expect(state.get_by_role("link", name=big.name)).to_be_visible()
    await resume.wait_for(state="detached")
    await look_at(page, "uploader-request-done-en")

    async with live.http() as http:
        answer = await http.get(f"/api/v1/requests/{opened['id']}", headers=tenant.admin.auth)
    item = next(i for i in answer.json()["items"] if i["id"] == item_id)
    assert item["status"] == "submitted"
    assert await stored_sha256(live, tenant.admin, item["document_id"]) == expected

    await choose_language(page, "fa")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await look_at(page, "uploader-request-fa")
    assert not problems, problems
    await context.close()


async def test_a_folder_page_takes_a_folder_and_a_drop_anywhere(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live = await live_app(config=CONFIG)
    tenant = await live.provision("Acme", "Inbox")
    staff = await add_person(live, "sam@example.test", "staff", "Acme")
    tree = tmp_path / "2025"
    (tree / "receipts").mkdir(parents=True)
    (tree / "receipts" / "a.pdf").write_bytes(b"%PDF receipt a")
    (tree / "receipts" / "b.pdf").write_bytes(b"%PDF receipt b")
    (tree / "summary.txt").write_bytes("خلاصه\n".encode())

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, staff.email, PASSWORD, enrol=True)
    await page.goto(f"{live.base_url}/folders/{tenant.folder_id}")
    await page.locator(".upload-panel--enhanced").wait_for()
    await expect(page.get_by_text("Upload a folder")).to_be_visible()

    # Files dragged over the empty state: the whole page says it takes them.
    await page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File(["x"], "x.txt"));
          document.querySelector(".empty-state").dispatchEvent(
            new DragEvent("dragenter", {bubbles: true, cancelable: true, dataTransfer: transfer}));
        }"""
    )
    overlay = page.locator(".upload-overlay")
    await expect(overlay).to_be_visible()
    await expect(overlay).to_contain_text("Inbox")
    await page.screenshot(path=str(artifacts() / "folder-overlay.png"))
    await page.evaluate(DROP_SCRIPT, [".empty-state", [("dropped on empty.txt", 300, 4)]])
    await expect(overlay).to_be_hidden()
    await wait_state(page, "dropped on empty.txt", "done", wait_ms=60_000)

    await page.set_input_files("#upload-folder-input", str(tree))
    for name in ("a.pdf", "b.pdf", "summary.txt"):
        await wait_state(page, name, "done", wait_ms=60_000)
    row = page.locator('.upload-item[data-upload-name="a.pdf"]')
    assert await row.get_attribute("data-upload-path") == "2025/receipts/a.pdf"
    listing = page.locator("#folder-listing")
    await listing.get_by_role("link", name="2025").wait_for()
    await look_at(page, "uploader-folder-en")

    async with live.http() as http:
        top = (await http.get(f"/api/v1/folders/{tenant.folder_id}", headers=staff.auth)).json()
        (year,) = [f for f in top["folders"] if f["name"] == "2025"]
        inside = (await http.get(f"/api/v1/folders/{year['id']}", headers=staff.auth)).json()
        (receipts,) = [f for f in inside["folders"] if f["name"] == "receipts"]
        deeper = (await http.get(f"/api/v1/folders/{receipts['id']}", headers=staff.auth)).json()
    assert {d["name"] for d in top["documents"]} == {"dropped on empty.txt"}
    assert {d["name"] for d in inside["documents"]} == {"summary.txt"}
    assert {d["name"] for d in deeper["documents"]} == {"a.pdf", "b.pdf"}

    await choose_language(page, "fa")
    await look_at(page, "uploader-folder-fa")
    assert not problems, problems
    await context.close()


async def test_publishing_uploads_the_file_with_progress_first(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live = await live_app(config=CONFIG)
    tenant = await live.provision("Acme", "Inbox")
    staff = await add_person(live, "sam@example.test", "staff", "Acme")
    report = tmp_path / "annual report.pdf"
    expected = await asyncio.to_thread(random_file, report, 12 * MiB)

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await browser_sign_in(page, live.base_url, staff.email, PASSWORD, enrol=True)
    await page.goto(f"{live.base_url}/publish")
    await choose_language(page, "fa")
    await look_at(page, "uploader-publish-fa")
    await choose_language(page, "en")
    await look_at(page, "uploader-publish-en")

    # Each chunk is held back a little, so the progress can be seen.
    async def slowly(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            await asyncio.sleep(0.7)
        await route.continue_()

    await page.route(UPLOADS, slowly)
    await page.locator(f'input[name="clients"][value="{tenant.client_id}"]').check()
    await page.set_input_files("#publish-files", str(report))
    async with page.expect_navigation(timeout=120_000):
        await page.get_by_role("button", name="Publish").click()
        row = page.locator(f'.upload-item[data-upload-name="{report.name}"]')
        await row.wait_for()
        await expect(page.locator("[data-upload-overall]")).to_be_visible()
        await page.screenshot(path=str(artifacts() / "publish-progress.png"), full_page=True)
        assert await page.get_by_role("button", name="Publish").is_disabled()
    assert "Acme" in await page.locator("main").inner_text()

    async with live.http() as http:
        top = await http.get(f"/api/v1/clients/{tenant.client_id}/folders", headers=staff.auth)
        (reports,) = [f for f in top.json()["folders"] if f["name"] == "Reports"]
        listed = (await http.get(f"/api/v1/folders/{reports['id']}", headers=staff.auth)).json()
    (document,) = listed["documents"]
    assert document["name"] == report.name
    assert await stored_sha256(live, staff, document["id"]) == expected
    await look_at(page, "uploader-publish-done-en")
    assert not problems, problems
    await context.close()
