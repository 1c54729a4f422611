"""An upload-request link in Debian's Chromium against a live server: a visitor without an
account, whose browser asks for Hebrew, gives a name and an email and drops a file with the
resumable uploader; staff find it in the folder, byte for byte. The drop page is checked
with axe-core and must not scroll sideways on a phone; screenshots go to
`$CLIENTVAULT_TEST_ARTIFACTS` as `drop-*.png`."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.fixtures.browser import DESKTOP, WCAG_21_AA, axe_violations
from tests.fixtures.camera import Camera
from tests.fixtures.dates import soon
from tests.fixtures.live import LiveAppFactory

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
