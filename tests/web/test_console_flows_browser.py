"""The console's Clients, Operations and Reports driven in a real browser against a real
server, each step clicked as an admin would, and looked at (screenshots at desktop and
390 px phone width, with axe-core finding nothing serious or critical at either width):

- Clients: create, rename (and a refused rename), mark as shared, archive (gone from the
  list, shown under "Show archived clients"), restore; a refused invitation.
- Reports: another client and another period chosen, a table downloaded as CSV.
- Operations: emails a refusing SMTP relay made fail, retried one at a time and all at once;
  a key rotation, then the re-wrap with its progress.

Screenshots go to `$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from typing import Any

import anyio
import pytest
from playwright.async_api import Browser, Page

from tests.fixtures.browser import AXE, DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveUser, Role
from tests.fixtures.smtp import SMTPSink, wait_for_mail

PASSWORD = "paper lantern over the harbour"
ADMIN = "ada.admin@example.test"
CAROL = "carol@acme.example.test"
DAVE = "dave@acme.example.test"

pytestmark = pytest.mark.skipif(
    not AXE.is_file(), reason="axe-core is not installed (npm ci in tests/js)"
)


async def start_portal(live_app: LiveAppFactory, smtp_sink: SMTPSink) -> LiveApp:
    config: dict[str, Any] = {
        "smtp": {
            "host": smtp_sink.host,
            "port": smtp_sink.port,
            "starttls": False,
            "from": "ClientVault <no-reply@example.test>",
        },
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
        # Clients hear of a new document at once, so a refused address fails at once.
        "notify": {"batch_window_seconds": 0},
    }
    return await live_app(config=config)


async def add_person(live: LiveApp, email: str, role: Role, *clients: str) -> LiveUser:
    """Someone with a password (so they are sent email) and a personal access token."""
    client_args = [arg for name in clients for arg in ("--client", name)]
    user_id = await live.cli(
        "user",
        "add",
        email,
        "--role",
        role,
        *client_args,
        "--password-stdin",
        stdin=f"{PASSWORD}\n".encode(),
    )
    token = await live.cli("token", "create", email, "--name", "flows")
    return LiveUser(id=user_id, email=email, role=role, token=token)


async def put_file(live: LiveApp, who: LiveUser, folder_id: str, name: str) -> None:
    async with live.http() as http:
        answer = await http.put(
            f"/api/v1/folders/{folder_id}/files/{name}",
            content=b"%PDF-1.4 " + name.encode(),
            headers=who.auth,
        )
    assert answer.status_code == 201, answer.text


async def status_text(page: Page) -> str:
    return " ".join((await page.get_by_role("status").first.inner_text()).split())


async def alert_text(page: Page) -> str:
    return " ".join((await page.get_by_role("alert").first.inner_text()).split())


async def look(page: Page, name: str) -> None:
    for path in await look_at(page, f"console-flow-{name}"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def click_and_wait(page: Page, button: str, url: str | re.Pattern[str]) -> None:
    await page.get_by_role("button", name=button, exact=True).click()
    await page.wait_for_url(url)


async def test_clients_and_reports_in_the_browser(
    live_app: LiveAppFactory, smtp_sink: SMTPSink, browser: Browser
) -> None:
    live = await start_portal(live_app, smtp_sink)
    base = live.base_url
    tenant = await live.provision("Acme")
    globex_id = await live.add_client("Globex")
    globex_folder = await live.create_folder(tenant.admin, globex_id, "Inbox")
    await add_person(live, ADMIN, "admin")
    await put_file(live, tenant.admin, tenant.folder_id, "acme.pdf")
    for n in range(2):
        await put_file(live, tenant.admin, globex_folder, f"globex-{n}.pdf")
    # The page runs the axe script it is given; the page CSP would (rightly) refuse it.
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await browser_sign_in(page, base, ADMIN, PASSWORD, enrol=True)

    # Create.
    await page.goto(f"{base}/admin/clients")
    await page.fill("#client-name", "Initech")
    await click_and_wait(
        page, "Add client", re.compile(r".*/admin/clients/[0-9a-f-]+\?done=created$")
    )
    client_path = page.url.split(base, 1)[1].split("?", 1)[0]
    assert "The client was added" in await status_text(page)
    await look(page, "01-client-created")

    # Rename; a name another client has is refused, and the form says why.
    await page.fill("#rename-name", "Initech Ltd")
    await click_and_wait(page, "Rename", f"{base}{client_path}?done=renamed")
    assert "Initech Ltd" in await page.locator("h1").inner_text()
    await page.fill("#rename-name", "Acme")
    async with page.expect_response(f"{base}{client_path}/rename") as answered:
        await page.get_by_role("button", name="Rename", exact=True).click()
    assert (await answered.value).status == 422
    assert "A client with this name already exists." in await alert_text(page)
    assert await page.get_attribute("#rename-name", "aria-invalid") == "true"
    await look(page, "02-rename-refused")

    # Mark as the firm's shared resources.
    await page.goto(f"{base}{client_path}")
    await click_and_wait(page, "Mark as shared resources", f"{base}{client_path}?done=shared")
    assert "everyone signed in can read it" in await status_text(page)

    # Archive: gone from the list, shown under "Show archived clients".
    await click_and_wait(page, "Archive client", f"{base}{client_path}?done=archived")
    assert "The client was archived" in await status_text(page)
    await page.goto(f"{base}/admin/clients")
    listed = await page.locator("main").inner_text()
    assert "Initech Ltd" not in listed and "Globex" in listed
    await page.get_by_role("link", name="Show archived clients").click()
    await page.wait_for_url(f"{base}/admin/clients?show=archived")
    row = page.locator("li.row", has_text="Initech Ltd")
    assert "Archived" in await row.inner_text()
    await look(page, "03-clients-archived")

    # Restore: back in the list.
    await row.get_by_role("link", name="Initech Ltd").click()
    await click_and_wait(page, "Restore client", f"{base}{client_path}?done=restored")
    assert "restored" in await status_text(page)
    await page.goto(f"{base}/admin/clients")
    assert "Initech Ltd" in await page.locator("main").inner_text()

    # An invitation without a client for a client user is refused, and the form says why.
    await page.goto(f"{base}/admin/people")
    await page.fill("#invite-email", "nora@example.test")
    await page.get_by_label("Client user", exact=True).check()
    async with page.expect_response(f"{base}/admin/people/invite") as answered:
        await page.get_by_role("button", name="Send invitation").click()
    assert (await answered.value).status == 422
    assert "Choose at least one client for a client user." in await alert_text(page)
    await look(page, "04-invite-refused")

    # Reports: Acme first, then Globex over 4 weeks, and a table downloaded as CSV.
    await page.goto(f"{base}/admin/reports?client_id={tenant.client_id}")
    assert "Acme" in await page.locator("h1").inner_text()
    await page.select_option("#report-client", label="Globex")
    await page.select_option("#report-weeks", "4")
    await page.get_by_role("button", name="Show", exact=True).click()
    await page.wait_for_url(re.compile(rf".*client_id={globex_id}&weeks=4$"))
    assert "Globex" in await page.locator("h1").inner_text()
    assert (await page.locator(".stat__value").first.inner_text()).strip() == "2"
    await look(page, "05-reports-globex")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name=re.compile("Download as CSV")).first.click()
    download = await downloading.value
    assert download.suggested_filename == f"weeks-{globex_id}.csv"
    saved = await download.path()
    text = await anyio.Path(saved).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 4  # a heading and the four weeks
    assert sum(int(r[rows[0].index("uploads")]) for r in rows[1:]) == 2, rows
    await context.close()


async def wait_for_failed(page: Page, count: int, seconds: float = 60.0) -> None:
    """Reload the Operations page until the outbox lists `count` failed messages."""
    deadline = time.monotonic() + seconds
    rows = page.locator("#outbox li.row")
    while await rows.count() != count:
        assert time.monotonic() < deadline, await page.locator("#outbox").inner_text()
        await asyncio.sleep(0.5)
        await page.reload()


async def test_operations_in_the_browser(
    live_app: LiveAppFactory, smtp_sink: SMTPSink, browser: Browser
) -> None:
    live = await start_portal(live_app, smtp_sink)
    base = live.base_url
    tenant = await live.provision("Acme")
    await add_person(live, ADMIN, "admin")
    for address in (CAROL, DAVE):
        await add_person(live, address, "client", "Acme")
    # The relay refuses both addresses for good: each new-document email fails at once.
    smtp_sink.reject |= {CAROL, DAVE}
    await put_file(live, tenant.admin, tenant.folder_id, "statement.pdf")

    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await browser_sign_in(page, base, ADMIN, PASSWORD, enrol=True)
    await page.goto(f"{base}/admin/operations")
    await wait_for_failed(page, 2)
    outbox = await page.locator("#outbox").inner_text()
    assert f"To {CAROL}" in outbox and f"To {DAVE}" in outbox and "550" in outbox
    await look(page, "10-operations-failed")

    # Carol's address is fixed at the relay: her message alone is retried, and arrives.
    smtp_sink.reject.discard(CAROL)
    carol_row = page.locator("#outbox li.row", has_text=CAROL)
    await carol_row.get_by_role("button", name=re.compile("^Retry")).click()
    await page.wait_for_url(f"{base}/admin/operations?done=retried#outbox")
    assert "queued again" in await status_text(page)
    await wait_for_mail(smtp_sink, CAROL, seconds=60)
    assert await page.locator("#outbox li.row").count() == 1

    # Then every remaining one at once.
    smtp_sink.reject.clear()
    await click_and_wait(page, "Retry all 1", f"{base}/admin/operations?done=retried-all#outbox")
    assert "Every failed message is queued again." in await status_text(page)
    await wait_for_mail(smtp_sink, DAVE, seconds=60)
    assert "No failed messages" in await page.locator("#outbox").inner_text()

    # Rotate: every key still on the old KEK, with the progress shown; then re-wrap.
    keys = page.locator("#keys")
    assert "Every key is on the active KEK." in await keys.inner_text()
    await click_and_wait(
        page, "Rotate key-encryption key", f"{base}/admin/operations?done=rotated#keys"
    )
    assert "A new key-encryption key is active" in await status_text(page)
    progress = re.search(
        r"Re-wrap progress: 0 of (\d+) keys are on the active KEK; (\d+) to go\.",
        await keys.inner_text(),
    )
    assert progress is not None and progress.group(1) == progress.group(2)
    assert int(progress.group(1)) >= 2  # the uploaded version and the admin's second factor
    assert await keys.locator("tbody tr").count() == 2
    await look(page, "11-operations-rotated")
    await click_and_wait(
        page, "Re-wrap data keys now", f"{base}/admin/operations?done=rewrapped#keys"
    )
    assert "Every data key is now wrapped" in await status_text(page)
    assert "Every key is on the active KEK." in await keys.inner_text()
    assert await page.get_by_role("button", name="Re-wrap data keys now").count() == 0
    await look(page, "12-operations-rewrapped")
    await context.close()
