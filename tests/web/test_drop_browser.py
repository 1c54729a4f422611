"""An upload-request link in Debian's Chromium against a live server: a visitor without an
account, whose browser asks for Hebrew, gives a name and an email and drops a file with the
resumable uploader; staff find it in the folder, byte for byte. The drop page is checked
with axe-core and must not scroll sideways on a phone; screenshots go to
`$CLIENTVAULT_TEST_ARTIFACTS` as `drop-*.png`. A drop cut off part-way and left by a reload
resumes from the server's offset once the visitor chooses the same file again."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from pathlib import Path

from playwright.async_api import Browser, Dialog, Request, Route, expect

from tests.fixtures.browser import DESKTOP, WCAG_21_AA, axe_violations
from tests.fixtures.camera import Camera
from tests.fixtures.dates import soon
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import pattern, wait_done

MiB = 1024 * 1024


async def test_a_visitor_drops_a_file_in_hebrew_on_desktop_and_phone(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    live = await live_app(config={"links": {"scan_drops": False, "firm_name": "Harbour & Co"}})
    tenant = await live.provision("Acme", "Inbox")
    async with live.http() as http:
        created = await http.post(
            f"/api/v1/folders/{tenant.folder_id}/links",
            json={"kind": "upload", "expires_at": soon(), "max_files": 3},
            headers=tenant.admin.auth,
        )
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    data = random.Random(7).randbytes(3 * MiB + 123)
    source = tmp_path / "דוח-שנתי.pdf"
    source.write_bytes(data)

    context = await browser.new_context(viewport=DESKTOP, locale="he-IL", bypass_csp=True)
    visitor = await context.new_page()
    camera = Camera(visitor, itertools.count(1), "drop")
    answer = await visitor.goto(url)
    assert answer is not None and answer.status == 200
    await expect(visitor.locator("html")).to_have_attribute("dir", "rtl")
    await expect(visitor.get_by_role("heading", name="שליחת קבצים")).to_be_visible()
    assert await axe_violations(visitor, impacts=None, tags=WCAG_21_AA) == []
    await camera.shoot("page")

    await visitor.get_by_label("השם שלכם").fill("דנה כהן")
    await visitor.locator("#uploader_email").fill("dana@bank.example")
    await visitor.locator("#upload-input").set_input_files(str(source))
    done = visitor.locator('[data-upload-list] [data-state="done"]')
    await expect(done).to_have_count(1, timeout=60_000)
    await expect(visitor.locator("[data-upload-live]")).to_contain_text("הקבצים שלכם נשלחו")
    await camera.shoot("sent")
    await context.close()

    [document] = await live.documents_in(tenant.folder_id, tenant.admin)
    assert document["name"] == source.name
    async with live.http(timeout=60) as http:
        content = await http.get(
            f"/api/v1/documents/{document['id']}/content", headers=tenant.admin.auth
        )
    assert hashlib.sha256(content.content).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_a_drop_cut_off_part_way_resumes_after_a_reload(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    # 5 MiB chunks: a 12 MiB file takes three PATCHes, and the first one gets through.
    live = await live_app(
        config={
            "links": {"scan_drops": False},
            "storage": {"part_size_mib": 5},
            "uploads": {"chunk_size_mib": 5},
        }
    )
    tenant = await live.provision("Acme", "Inbox")
    async with live.http() as http:
        created = await http.post(
            f"/api/v1/folders/{tenant.folder_id}/links",
            json={"kind": "upload", "expires_at": soon()},
            headers=tenant.admin.auth,
        )
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    big = tmp_path / "statements-2025.bin"
    big.write_bytes(pattern(12 * MiB, 11))

    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    visitor = await context.new_page()
    dialogs: list[str] = []

    async def leave(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        await dialog.accept()

    visitor.on("dialog", leave)
    await visitor.goto(url)

    async def give_name() -> None:
        await visitor.locator("#uploader_name").fill("Dana Banker")
        await visitor.locator("#uploader_email").fill("dana@bank.example")

    blocked = asyncio.Event()

    async def cut_after_first_chunk(route: Route, request: Request) -> None:
        if request.method == "PATCH" and int(request.headers.get("upload-offset", "0")) > 0:
            blocked.set()
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    uploads = "**/s/*/uploads/*"
    await visitor.route(uploads, cut_after_first_chunk)
    await give_name()
    await visitor.locator("#upload-input").set_input_files(str(big))
    await asyncio.wait_for(blocked.wait(), 60)
    row = visitor.locator(f'.upload-item[data-upload-name="{big.name}"]')
    assert await row.get_attribute("data-state") in ("uploading", "paused")
    await row.locator("button").first.click()  # Pause
    await row.and_(visitor.locator('[data-state="paused"]')).wait_for()

    await visitor.unroute(uploads)
    await visitor.reload()
    resume = visitor.locator(f'[data-upload-resume] [data-resume-name="{big.name}"]')
    await resume.wait_for()

    offsets: list[int] = []
    visitor.on(
        "request",
        lambda request: (
            offsets.append(int(request.headers.get("upload-offset", "-1")))
            if request.method == "PATCH"
            else None
        ),
    )
    await give_name()
    await visitor.locator("#upload-input").set_input_files(str(big))
    await wait_done(visitor, big.name)
    assert offsets and offsets[0] > 0, f"resumed from the server's offset, not zero: {offsets}"
    assert offsets[0] == 5 * MiB
    await resume.wait_for(state="detached")
    await context.close()

    # One document, byte for byte: the resumed upload, not a second copy.
    [document] = await live.documents_in(tenant.folder_id, tenant.admin)
    assert document["name"] == big.name
    async with live.http(timeout=60) as http:
        content = await http.get(
            f"/api/v1/documents/{document['id']}/content", headers=tenant.admin.auth
        )
    assert content.content == big.read_bytes()
