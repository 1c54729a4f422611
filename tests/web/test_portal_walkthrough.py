"""The portal end to end, in Debian's Chromium against a live server storing into S3 (a moto
server over HTTP): a client signs in, browses, drops three files (one upload cut off mid-way
and resumed), downloads one and compares the bytes, restores an old version, fulfils a
document request that staff then accept, and switches to Persian to find the layout
mirrored. Each main page is saved at desktop and phone width as `portal-*.png` in
`$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`)."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import (
    Browser,
    Dialog,
    Page,
    Request,
    Route,
    expect,
)

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory
from tests.fixtures.portal import DROP_SCRIPT, PASSWORD, add_person, pattern, wait_done, watch
from tests.fixtures.s3 import S3Endpoint, empty_bucket, s3_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
UPLOADS = "**/api/v1/uploads/*"


class Camera:
    """Screenshots of a page at desktop and at phone width; nothing may scroll sideways on
    the phone (WCAG 1.4.10 reflow)."""

    def __init__(self, page: Page, numbers: Iterator[int]) -> None:
        self.page = page
        self.numbers = numbers  # shared by the cameras of one walk, so the files sort in order

    async def shoot(self, name: str) -> None:
        await look_at(self.page, f"portal-{next(self.numbers):02d}-{name}")


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> Iterator[tuple[S3Endpoint, str]]:
    endpoint = s3_endpoint(request)
    client: S3Client = endpoint.client()
    name = f"portal-{uuid.uuid4().hex}"
    client.create_bucket(Bucket=name)
    try:
        yield endpoint, name
    finally:
        empty_bucket(client, name)
        client.delete_bucket(Bucket=name)
        client.close()


async def start(live_app: LiveAppFactory, bucket: tuple[S3Endpoint, str]) -> LiveApp:
    endpoint, name = bucket
    return await live_app(
        config={
            "storage": {
                "backend": "s3",
                "endpoint_url": endpoint.url,
                "bucket": name,
                "access_key_id": endpoint.access_key_id,
                "secret_access_key": endpoint.secret_access_key,
                "part_size_mib": 5,
            },
            "uploads": {"chunk_size_mib": 5},
            # Staff sign in with a password only here: TOTP has its own walkthrough.
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin,auditor",
            },
        }
    )


async def test_a_client_works_through_the_portal(
    live_app: LiveAppFactory,
    bucket: tuple[S3Endpoint, str],
    browser: Browser,
    tmp_path: Path,
) -> None:
    live = await start(live_app, bucket)
    tenant = await live.provision("Acme", "Inbox")
    clara = await add_person(live, "clara@example.test", "client", "Acme")
    sam = await add_person(live, "sam@example.test", "staff", "Acme")
    async with live.http() as http:
        made = await http.post(
            f"/api/v1/clients/{tenant.client_id}/requests",
            json={
                "title": "Tax return 2026",
                "message": "Please send your payslips.",
                "due_date": (date.today() + timedelta(days=10)).isoformat(),
                "folder_id": tenant.folder_id,
                "items": ["Payslips"],
            },
            headers=sam.auth,
        )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]

    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    numbers = itertools.count(1)
    confirmations: list[str] = []

    async def confirm(dialog: Dialog) -> None:
        confirmations.append(dialog.message)
        await dialog.accept()

    page.on("dialog", confirm)
    camera = Camera(page, numbers)

    # 1. Sign in; the dashboard shows the open request.
    await page.goto(f"{live.base_url}/login")
    await camera.shoot("sign-in")
    await browser_sign_in(page, live.base_url, clara.email, PASSWORD)
    await expect(page.locator("main")).to_contain_text("Tax return 2026")
    await camera.shoot("dashboard")

    # 2. Browse: the client, then its folder, empty so far.
    await page.get_by_role("link", name="Acme").first.click()
    await page.get_by_role("link", name="Inbox").click()
    await page.wait_for_url(f"{live.base_url}/folders/{tenant.folder_id}")
    await page.locator(".upload-panel--enhanced").wait_for()
    await expect(page.locator("#folder-listing")).to_contain_text("This folder is empty")
    await camera.shoot("empty-folder")

    # 3. Three files dropped at once; the first PATCH of the largest is cut off mid-way,
    # and the upload resumes to completion by itself.
    cut: list[str] = []

    async def cut_once(route: Route, request: Request) -> None:
        if request.method == "PATCH" and not cut:
            cut.append(request.url)
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await page.route(UPLOADS, cut_once)
    dropped = [("report.txt", 2000, 1), ("نامه.pdf", 300_000, 2), ("archive.bin", 12 * MiB, 3)]
    await page.evaluate(DROP_SCRIPT, ["[data-upload-drop]", dropped])
    progress = page.locator("[data-upload-overall-progress]")
    await expect(progress).to_be_visible()
    for name, _, _ in dropped:
        await wait_done(page, name)
    await page.unroute(UPLOADS)
    assert cut, "a PATCH was cut off, and the upload still finished"
    await expect(page.locator("[data-upload-live]")).to_contain_text("All uploads are done")
    listing = page.locator("#folder-listing")
    for name, _, _ in dropped:
        await listing.get_by_role("link", name=name, exact=True).wait_for()
    await camera.shoot("uploaded")

    # 4. Download one from the listing and compare the bytes.
    async with page.expect_download() as started:
        await listing.get_by_role("link", name="Download نامه.pdf").click()
    download = await started.value
    saved = tmp_path / "downloaded.pdf"
    await download.save_as(saved)
    assert download.suggested_filename == "نامه.pdf"
    assert (
        hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(pattern(300_000, 2)).digest()
    )

    # 5. A second version of the report, then the first restored as a third.
    await page.evaluate(DROP_SCRIPT, ["[data-upload-drop]", [("report.txt", 3000, 7)]])
    await (
        page.locator('.upload-item[data-upload-name="report.txt"][data-state="done"]')
        .nth(1)
        .wait_for(timeout=60_000)
    )
    await page.goto(f"{live.base_url}/folders/{tenant.folder_id}")
    await page.get_by_role("link", name="report.txt", exact=True).click()
    versions = page.locator("table.browse-versions tbody tr")
    await expect(versions).to_have_count(2)
    await camera.shoot("document")
    restore = versions.nth(1).get_by_role("button", name="Restore this version")
    await page.wait_for_load_state("load")  # the confirmation is asked by a deferred script
    # By keyboard, as the page must allow; it also cannot miss a button that the layout
    # moved after the phone-width screenshot.
    await restore.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/documents/*?done=restored*", wait_until="domcontentloaded")
    await expect(page.get_by_role("status")).to_contain_text("restored as version 3")
    await expect(versions).to_have_count(3)
    assert confirmations and "Restore version 1?" in confirmations[0]
    async with page.expect_download() as started:
        await page.locator(".browse-head").get_by_role("link", name="Download").click()
    restored = tmp_path / "restored.txt"
    await (await started.value).save_as(restored)
    assert restored.read_bytes() == pattern(2000, 1)

    # 6. Fulfil the document request: the item's own uploader takes the file at once.
    await page.goto(f"{live.base_url}/requests")
    await page.get_by_role("link", name="Tax return 2026").click()
    await page.wait_for_url(f"{live.base_url}/requests/{request_id}")
    payslips = tmp_path / "payslips-2026.pdf"
    payslips.write_bytes(b"%PDF-1.4 payslips\n" * 1000)
    await page.get_by_label("Files for “Payslips”").set_input_files(payslips)
    done = page.locator('.upload-item[data-upload-name="payslips-2026.pdf"][data-state="done"]')
    await done.wait_for(timeout=60_000)
    await expect(page.locator("[data-item-file]")).to_contain_text("payslips-2026.pdf")
    await camera.shoot("request")

    # Staff see it submitted, and accept it.
    staff_page = await context.browser.new_page(viewport=DESKTOP)  # type: ignore[union-attr]
    watch(staff_page, problems)
    staff_camera = Camera(staff_page, numbers)
    await browser_sign_in(staff_page, live.base_url, sam.email, PASSWORD)
    await staff_page.goto(f"{live.base_url}/requests")
    await staff_camera.shoot("staff-requests")
    await staff_page.goto(f"{live.base_url}/requests/{request_id}")
    await staff_page.get_by_role("button", name="Accept").click()
    await expect(staff_page.get_by_role("status")).to_contain_text("request is complete")
    await staff_page.goto(f"{live.base_url}/publish")
    await staff_camera.shoot("staff-publish")
    await staff_page.goto(f"{live.base_url}/trash")
    await staff_camera.shoot("staff-trash")
    await staff_page.close()
    await page.reload()
    await expect(page.locator("main")).to_contain_text("Accepted")

    # 7. Switch to Persian: the page is right-to-left, and the layout really is mirrored.
    await page.goto(f"{live.base_url}/folders/{tenant.folder_id}")
    brand_ltr = await page.locator(".brand").bounding_box()
    await page.select_option("#language-choice", "fa")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.locator("html")).to_have_attribute("lang", "fa")
    brand_rtl = await page.locator(".brand").bounding_box()
    assert brand_ltr is not None and brand_rtl is not None
    assert brand_ltr["x"] < DESKTOP["width"] / 2 < brand_rtl["x"], (brand_ltr, brand_rtl)
    assert "/folders/" in page.url, "the switch returns to the same page"
    await camera.shoot("folder-persian")
    await page.goto(f"{live.base_url}/")
    await camera.shoot("dashboard-persian")

    assert not problems, problems
    await context.close()
