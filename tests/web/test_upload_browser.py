"""The upload panel in a real browser against a real server: files dropped and picked go up
through the resumable upload API (tus-js-client), a PATCH cut off mid-way is retried to
completion (as is a POST carrying a whole small file, which makes its upload again), and an
upload left by a reload resumes from the server's offset, not from zero.
Uploaded bytes are downloaded back and compared."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Request,
    Route,
    expect,
)

from tests.fixtures.browser import DESKTOP, PHONE, artifacts, browser_sign_in
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveUser
from tests.fixtures.portal import DROP_SCRIPT, pattern, wait_done

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part size the settings allow: several chunks per test file
PASSWORD = "a long passphrase for the upload test"
UPLOADS = "**/api/v1/uploads/*"
CREATE = "**/api/v1/uploads"  # the POST that makes an upload


async def start(live_app: LiveAppFactory) -> tuple[LiveApp, str, LiveUser, str]:
    live = await live_app(
        config={
            "storage": {"part_size_mib": 5},
            "uploads": {"chunk_size_mib": 5},
            "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
        }
    )
    tenant = await live.provision("Acme", "Inbox")
    email = "clara@example.test"
    await live.cli(
        "user",
        "add",
        email,
        "--role",
        "client",
        "--client",
        "Acme",
        "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )
    return live, tenant.folder_id, tenant.admin, email


async def downloaded(live: LiveApp, folder_id: str, user: LiveUser) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    async with live.http() as http:
        for document in await live.documents_in(folder_id, user):
            response = await http.get(
                f"/api/v1/documents/{document['id']}/content", headers=user.auth
            )
            assert response.status_code == 200, response.text
            found[document["name"]] = response.content
    return found


async def test_drop_pick_interrupt_reload_and_resume(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live, folder_id, admin, email = await start(live_app)
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    problems: list[str] = []

    def on_console(entry: ConsoleMessage) -> None:
        url = str(entry.location.get("url", ""))
        # Cut-off requests are the test's own doing; the favicon is no page's concern.
        if entry.type == "error" and "net::ERR" not in entry.text and "favicon" not in url:
            problems.append(f"{entry.text} {url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    await browser_sign_in(page, live.base_url, email, PASSWORD)
    await page.goto(f"{live.base_url}/folders/{folder_id}")
    await page.locator(".upload-panel--enhanced").wait_for()
    assert not await page.locator(".upload-submit").is_visible(), "the script took over"
    # The drop zone is the file input's label: keyboard and screen readers reach the picker.
    assert await page.get_by_label("Choose files").get_attribute("type") == "file"

    # 1. Three files dropped at once; the first PATCH of the largest is cut off mid-way, and
    # so is the first POST that carries a whole small file (its upload is made again).
    cut: list[str] = []

    async def cut_once(route: Route, request: Request) -> None:
        carries = request.headers.get("content-type") == "application/offset+octet-stream"
        if carries and request.method not in cut:
            cut.append(request.method)
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await page.route(UPLOADS, cut_once)
    await page.route(CREATE, cut_once)
    dropped = [
        ("dropped-one.txt", 1000, 1),
        ("dropped-two.csv", 0, 2),
        ("قرارداد.bin", 12 * MiB, 3),
    ]
    await page.evaluate(DROP_SCRIPT, ["[data-upload-drop]", dropped])
    for name, _, _ in dropped:
        await wait_done(page, name)
    assert sorted(cut) == ["PATCH", "POST"], cut
    live_region = page.locator("[data-upload-live]")
    await expect(live_region).to_contain_text("All uploads are done", timeout=10_000)
    # The drop landed on the zone, inside the page's drop area: its overlay is gone too.
    await expect(page.locator(".upload-overlay")).to_be_hidden()
    assert await live_region.get_attribute("aria-live") == "polite"
    await page.unroute(UPLOADS)
    await page.unroute(CREATE)
    overall = page.locator("[data-upload-overall-progress]")
    assert await overall.get_attribute("value") == await overall.get_attribute("max")
    # The listing was refreshed in place once all were done.
    listing = page.locator("#folder-listing")
    for name, _, _ in dropped:
        await listing.get_by_role("link", name=name, exact=True).wait_for()
    await page.screenshot(path=str(artifacts() / "upload-01-dropped.png"), full_page=True)

    # 2. Picked files; the large one is stopped after its first chunk, then the tab reloads.
    small = tmp_path / "Übersicht 年度.txt"
    small.write_bytes("Grüße, 你好 ✓\n".encode() * 100)
    big = tmp_path / "archive.bin"
    big.write_bytes(pattern(12 * MiB, 9))
    blocked = asyncio.Event()

    async def block_after_first_chunk(route: Route, request: Request) -> None:
        # The small file goes whole with its POST; the large one stops after its first PATCH.
        if request.method == "PATCH" and int(request.headers.get("upload-offset", "0")) > 0:
            blocked.set()
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route(UPLOADS, block_after_first_chunk)
    await page.set_input_files(".upload-input", [str(small), str(big)])
    await wait_done(page, small.name)
    await asyncio.wait_for(blocked.wait(), 60)
    row = page.locator('.upload-item[data-upload-name="archive.bin"]')
    assert await row.get_attribute("data-state") in ("uploading", "paused")
    await row.locator("button").first.click()  # Pause
    await row.and_(page.locator('[data-state="paused"]')).wait_for()
    await page.screenshot(path=str(artifacts() / "upload-02-paused.png"), full_page=True)

    await page.unroute(UPLOADS)
    await page.reload()
    resume = page.locator('[data-upload-resume] [data-resume-name="archive.bin"]')
    await resume.wait_for()
    await page.screenshot(path=str(artifacts() / "upload-03-unfinished.png"), full_page=True)

    offsets: list[int] = []
    page.on(
        "request",
        lambda request: (
            offsets.append(int(request.headers.get("upload-offset", "-1")))
            if request.method == "PATCH"
            else None
        ),
    )
    await page.set_input_files(".upload-input", str(big))
    await wait_done(page, "archive.bin")
    assert offsets, "the upload went on"
    assert offsets[0] == PART, f"resumed from the server's offset, not zero: {offsets}"
    await resume.wait_for(state="detached")
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(artifacts() / "upload-04-done-phone.png"), full_page=True)
    # The panel fits a phone: nothing in it reaches past the viewport (WCAG 1.4.10 reflow).
    overflow = await page.evaluate(
        """(limit) => [...document.querySelectorAll("#upload-panel, #upload-panel *")]
             .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > limit)
             .map((e) => e.tagName + "." + e.className)""",
        PHONE["width"],
    )
    assert not overflow, f"wider than the phone: {overflow}"

    # 3. The bytes, downloaded back.
    got = await downloaded(live, folder_id, admin)
    assert got["dropped-one.txt"] == pattern(1000, 1)
    assert got["dropped-two.csv"] == b""
    assert (
        hashlib.sha256(got["قرارداد.bin"]).digest() == hashlib.sha256(pattern(12 * MiB, 3)).digest()
    )
    assert got[small.name] == small.read_bytes()
    assert got["archive.bin"] == big.read_bytes()
    assert not problems, problems
    await context.close()


async def test_without_javascript_the_form_uploads_in_one_post(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live, folder_id, admin, email = await start(live_app)
    context = await browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = await context.new_page()
    await browser_sign_in(page, live.base_url, email, PASSWORD)
    await page.goto(f"{live.base_url}/folders/{folder_id}")
    files = [tmp_path / "רשימה 2026.txt", tmp_path / 'quote "this".csv', tmp_path / "big.bin"]
    files[0].write_bytes("שלום\n".encode() * 500)
    files[1].write_bytes(b"a,b\r\n1,2\r\n")
    files[2].write_bytes(pattern(7 * MiB, 5))
    await page.set_input_files(".upload-input", [str(f) for f in files])
    async with page.expect_navigation():
        await page.locator(".upload-submit button").click()
    assert page.url == f"{live.base_url}/folders/{folder_id}?done=uploaded&count=3"
    got = await downloaded(live, folder_id, admin)
    assert got == {f.name: f.read_bytes() for f in files}
    await context.close()
