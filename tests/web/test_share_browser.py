"""Share links in Debian's Chromium against a live server: staff create a password-protected
link on the document page and copy it; a visitor without an account, whose browser asks for
Hebrew, opens it, gives the password and downloads the file (bytes compared); staff revoke
it and the visitor's next visit finds nothing. The visitor's pages are checked with axe-core
and must not scroll sideways on a phone. Screenshots at 1366×900 and 390 px go to
`$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`) as `share-*.png`."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, Dialog, expect
from playwright.async_api import Error as PlaywrightError

from tests.fixtures.browser import (
    DESKTOP,
    WCAG_21_AA,
    axe_violations,
    browser_sign_in,
    fill_kept,
    press_until_shown,
)
from tests.fixtures.camera import Camera
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import PASSWORD, add_person, watch

LINK_PASSWORD = "harbour lights at dusk"
DATA = b"%PDF-1.7\n" + bytes(range(256)) * 300


async def test_a_visitor_without_an_account_downloads_through_a_link_in_hebrew(
    live_app: LiveAppFactory, browser: Browser, tmp_path: Path
) -> None:
    # Server and browser share a small, busy machine: give each expectation time.
    expect.set_options(timeout=20_000)
    live = await live_app(
        config={
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "mfa_required_roles": "admin,auditor",
            },
            "links": {"firm_name": "Harbour & Co"},
        }
    )
    tenant = await live.provision("Acme", "Inbox")
    staff = await add_person(live, "sam@example.test", "staff", "Acme")
    async with live.http() as http:
        put = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/annual-report.pdf",
            content=DATA,
            headers=staff.auth,
        )
        assert put.status_code == 201, put.text
        document_id = put.json()["document_id"]

    # Staff: create the link on the document page.
    staff_context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    staff_page = await staff_context.new_page()
    problems: list[str] = []
    watch(staff_page, problems)
    await browser_sign_in(staff_page, live.base_url, staff.email, PASSWORD)
    await staff_page.goto(f"{live.base_url}/documents/{document_id}")
    panel = staff_page.locator("#share-links")
    await expect(panel).to_contain_text("A link expires within 30 days at most.")
    await fill_kept(panel.get_by_label("Password (optional)"), LINK_PASSWORD)
    await fill_kept(panel.get_by_label("Most downloads (optional)"), "3")
    await expect(panel.get_by_label("Password (optional)")).to_have_value(LINK_PASSWORD)
    await press_until_shown(
        panel.get_by_role("button", name="Create link"),
        staff_page.get_by_role("heading", name="Your new link"),
    )
    url = (await staff_page.locator("#new-link").inner_text()).strip()
    assert url.startswith(f"{live.base_url}/s/")
    numbers = itertools.count(1)
    staff_camera = Camera(staff_page, numbers)
    await staff_camera.shoot("created")
    await staff_page.get_by_role("link", name="Back").click()
    await expect(panel.get_by_text("Active")).to_be_visible()
    await staff_camera.shoot("document-panel")

    # The visitor: no account, a browser that asks for Hebrew, CSP bypassed only for axe.
    visitor_context = await browser.new_context(
        viewport=DESKTOP, locale="he-IL", accept_downloads=True, bypass_csp=True
    )
    visitor = await visitor_context.new_page()
    watch(visitor, problems)
    camera = Camera(visitor, numbers)
    answer = await visitor.goto(url)
    assert answer is not None and answer.status == 200
    assert answer.headers["referrer-policy"] == "no-referrer"
    await expect(visitor.locator("html")).to_have_attribute("dir", "rtl")
    await expect(visitor.locator("html")).to_have_attribute("lang", "he")
    await expect(visitor.get_by_text("שותף איתך על ידי Harbour & Co")).to_be_visible()
    assert "annual-report.pdf" not in await visitor.content()
    assert await axe_violations(visitor, impacts=None, tags=WCAG_21_AA) == []
    await camera.shoot("password")

    await visitor.get_by_label("סיסמה").fill("not the password")
    await visitor.get_by_role("button", name="המשך").click()
    await expect(visitor.get_by_role("alert")).to_be_visible()
    await visitor.get_by_label("סיסמה").fill(LINK_PASSWORD)
    await visitor.get_by_role("button", name="המשך").click()
    await expect(visitor.get_by_role("heading", name="annual-report.pdf")).to_be_visible()
    assert await axe_violations(visitor, impacts=None, tags=WCAG_21_AA) == []
    await camera.shoot("shared")

    async with visitor.expect_download() as started:
        await visitor.get_by_role("link", name="הורדה").first.click()
    download = await started.value
    saved = tmp_path / "downloaded.pdf"
    await download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(DATA).digest()
    assert download.suggested_filename == "annual-report.pdf"

    # Staff revoke it from the document page; the visitor's next visit finds nothing.
    await staff_page.reload()

    async def accept(dialog: Dialog) -> None:
        with contextlib.suppress(PlaywrightError):  # dismissed by the PDF viewer already
            await dialog.accept()

    staff_page.on("dialog", accept)
    await press_until_shown(
        panel.get_by_role("button", name="Revoke"), panel.get_by_text("Revoked")
    )
    gone = await visitor.goto(url)
    assert gone is not None and gone.status == 404
    await expect(visitor.get_by_role("heading", name="הקישור הזה אינו זמין")).to_be_visible()
    assert await axe_violations(visitor, impacts=None, tags=WCAG_21_AA) == []
    await camera.shoot("gone")
    # The wrong password (400) and the revoked link (404) are answers a browser logs; no
    # other request failed and no script or style was refused.
    assert sorted(problems) == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)",
        "Failed to load resource: the server responded with a status of 404 (Not Found)",
    ]

    # A folder link: the visitor lists the folder and takes it as one ZIP.
    async with live.http() as http:
        made = await http.post(
            f"/api/v1/folders/{tenant.folder_id}/links",
            json={"expires_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            headers=staff.auth,
        )
        assert made.status_code == 201, made.text
    answer = await visitor.goto(made.json()["url"])
    assert answer is not None and answer.status == 200
    await expect(visitor.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(visitor.get_by_role("row", name="annual-report.pdf")).to_be_visible()
    assert await axe_violations(visitor, impacts=None, tags=WCAG_21_AA) == []
    await camera.shoot("folder")
    async with visitor.expect_download() as started:
        await visitor.get_by_role("link", name="הורדת הכול (ZIP)").click()
    archive = tmp_path / "inbox.zip"
    await (await started.value).save_as(archive)
    with zipfile.ZipFile(archive) as opened:
        assert opened.namelist() == ["Inbox/", "Inbox/annual-report.pdf"]
        assert opened.read("Inbox/annual-report.pdf") == DATA
    assert len(problems) == 2  # nothing new went wrong on the folder's page

    async with live.http() as http:
        # The auditor's view: the visitor's steps, each naming the link.
        events = await http.get(
            "/api/v1/audit", params={"document_id": document_id}, headers=tenant.admin.auth
        )
    actions = [e["action"] for e in events.json()["events"] if e["action"].startswith("link.")]
    assert {"link.created", "link.unlocked", "link.unlock_failed", "link.downloaded"} <= set(
        actions
    )
    token = url.rsplit("/", 1)[1]
    assert PASSWORD not in events.text and token not in events.text
    # The server's own log (access lines included) names the route, never the token.
    assert "/s/" in live.log() and token not in live.log()
    await visitor_context.close()
    await staff_context.close()
