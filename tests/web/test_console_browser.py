"""The console in a real browser against a real server: an admin, with nothing but the
browser, invites a staff member (the invitation arrives by SMTP), assigns them to a client,
disables a client user whose open session and personal access token stop working at once,
and resets that user's lost second factor (the user is emailed) — each step audited.

Every console page is then checked with axe-core (the npm package, run in Chromium) in
English and Hebrew, at desktop and at 390 px phone width, with no serious or critical
violation, and with nothing sticking out sideways at phone width (the console's other states
and flows are in test_console_flows_browser.py). Screenshots of each step, at 1366×900 and
at 390 px, in English and in Persian or Hebrew, are saved into `$CLIENTVAULT_TEST_ARTIFACTS`
(default `test-artifacts/`).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.fixtures.browser import (
    AXE,
    CHROMIUM,
    DESKTOP,
    browser_sign_in,
    look_at,
)
from tests.fixtures.live import LiveApp, LiveAppFactory
from tests.fixtures.smtp import SMTPSink, wait_for_mail

PASSWORD = "paper lantern over the harbour"
ADMIN = "ada.admin@example.test"
CAROL = "carol@acme.example.test"
STAFF = "sam.new@example.test"


async def shoot(page: Page, name: str) -> None:
    """The page at desktop and at phone width; nothing may stick out sideways on the phone
    (WCAG 1.4.10 reflow)."""
    for path in await look_at(page, f"console-{name}", axe=False):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def start_portal(live_app: LiveAppFactory, smtp_sink: SMTPSink) -> LiveApp:
    return await live_app(
        config={
            "smtp": {
                "host": smtp_sink.host,
                "port": smtp_sink.port,
                "starttls": False,
                "from": "ClientVault <no-reply@example.test>",
            },
            "auth": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                # Client users too, so the one whose phone is lost has a second factor.
                "mfa_required_roles": "admin,auditor,staff,client",
            },
        }
    )


async def notice(page: Page) -> str:
    return " ".join((await page.get_by_role("status").first.inner_text()).split())


async def audit_actions(live: LiveApp, token: str, actor: str) -> list[tuple[str, str | None]]:
    async with live.http() as http:
        answer = await http.get(
            "/api/v1/audit",
            params={"actor": actor, "limit": 200},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    return [(e["action"], e.get("target_id")) for e in reversed(answer.json()["events"])]


async def choose_language(page: Page, lang: str) -> None:
    async with page.expect_navigation():
        await page.select_option("#language-choice", lang)
    assert await page.locator("html").get_attribute("lang") == lang


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no system Chromium")
async def test_admin_invites_assigns_disables_and_resets_in_the_browser(
    live_app: LiveAppFactory, smtp_sink: SMTPSink, browser: Browser
) -> None:
    live = await start_portal(live_app, smtp_sink)
    base = live.base_url
    await live.add_client("Acme")
    await live.add_client("Globex")
    admin_id = await live.cli(
        "user", "add", ADMIN, "--role", "admin", "--password-stdin", stdin=f"{PASSWORD}\n".encode()
    )
    admin_token = await live.cli("token", "create", ADMIN, "--name", "audit-check")
    carol_id = await live.cli(
        "user",
        "add",
        CAROL,
        "--role",
        "client",
        "--client",
        "Acme",
        "--password-stdin",
        stdin=f"{PASSWORD}\n".encode(),
    )
    carol_token = await live.cli("token", "create", CAROL, "--name", "carol-script")

    # Carol is signed in, in her own browser, and has a working token for her scripts.
    carol_context = await browser.new_context(viewport=DESKTOP)
    carol = await carol_context.new_page()
    await browser_sign_in(carol, base, CAROL, PASSWORD, enrol=True)
    async with live.http() as http:
        me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {carol_token}"})
    assert me.status_code == 200

    context: BrowserContext = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await browser_sign_in(page, base, ADMIN, PASSWORD, enrol=True)
    await page.get_by_role("link", name="Console").click()
    await page.wait_for_url(f"{base}/admin/people")
    assert CAROL in await page.locator("main").inner_text()
    await shoot(page, "01-people")

    # 1. Invite a staff member; the invitation travels by SMTP.
    await page.fill("#invite-email", STAFF)
    await page.fill("#invite-name", "Sam New")
    await page.get_by_label("Staff", exact=True).check()
    await page.get_by_role("button", name="Send invitation").click()
    await page.wait_for_url(f"{base}/admin/people?done=invited")
    assert "The invitation was sent" in await notice(page)
    invitation = await wait_for_mail(smtp_sink, STAFF)
    assert invitation["Subject"] == "You are invited to ClientVault"
    await shoot(page, "02-invited")

    # 2. Assign them to Acme from their page.
    await page.get_by_role("link", name="Sam New").click()
    staff_path = urlpath(page.url)
    assert "Invited" in await page.locator("main").inner_text()
    await page.select_option("#client-choice", label="Acme")
    await page.get_by_role("button", name="Assign", exact=True).click()
    await page.wait_for_url(f"{base}{staff_path}?done=granted")
    assigned = await page.locator("section[aria-labelledby='clients-heading']").inner_text()
    assert "Acme" in assigned
    await shoot(page, "03-staff-assigned")
    staff_id = staff_path.rsplit("/", 1)[1]

    # 3. Disable Carol: her open session and her token stop at once.
    await page.goto(f"{base}/admin/people?q=carol")
    await page.get_by_role("link", name=CAROL).click()
    await page.get_by_role("button", name="Disable account").click()
    await page.wait_for_url(re.compile(r".*done=disabled$"))
    assert "stopped working at once" in await notice(page)
    await shoot(page, "04-disabled")
    await carol.reload()
    assert urlpath(carol.url) == "/login"
    async with live.http() as http:
        me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {carol_token}"})
    assert me.status_code == 401

    # 4. Carol comes back having lost her phone: enabled again, her second factor reset.
    await page.get_by_role("button", name="Enable account").click()
    await page.wait_for_url(re.compile(r".*done=enabled$"))
    await page.get_by_role("button", name="Reset two-step sign-in").click()
    await page.wait_for_url(re.compile(r".*done=mfa-reset$"))
    assert "told by email" in await notice(page)
    facts = await page.locator("section[aria-labelledby='facts-heading']").inner_text()
    assert "Off" in facts
    await shoot(page, "05-mfa-reset")
    told = await wait_for_mail(smtp_sink, CAROL)
    assert told["Subject"] == "The two-step sign-in of your ClientVault account was reset"
    await browser_sign_in(
        carol, base, CAROL, PASSWORD, enrol=True
    )  # straight to enrolling a new authenticator

    # Each step is in the audit log under the admin's name.
    actions = await audit_actions(live, admin_token, admin_id)
    wanted = [
        ("user.invited", staff_id),
        ("user.access_granted", staff_id),
        ("user.disabled", carol_id),
        ("user.enabled", carol_id),
        ("mfa.reset", carol_id),
    ]
    assert [a for a in actions if a in wanted] == wanted, actions

    # The same pages in Persian and Hebrew, mirrored.
    for lang in ("fa", "he"):
        await choose_language(page, lang)
        assert await page.locator("html").get_attribute("dir") == "rtl"
        await shoot(page, f"06-person-{lang}")
        await page.goto(f"{base}/admin/people")
        await shoot(page, f"07-people-{lang}")
        await page.goto(f"{base}{staff_path}")
    await choose_language(page, "en")
    await carol_context.close()
    await context.close()


def urlpath(url: str) -> str:
    return httpx.URL(url).path


@pytest.mark.skipif(not AXE.is_file(), reason="axe-core is not installed (npm ci in tests/js)")
async def test_every_console_page_passes_axe_in_english_and_hebrew(
    live_app: LiveAppFactory, smtp_sink: SMTPSink, browser: Browser
) -> None:
    live = await start_portal(live_app, smtp_sink)
    base = live.base_url
    tenant = await live.provision("Acme")
    await live.cli(
        "user", "add", ADMIN, "--role", "admin", "--password-stdin", stdin=f"{PASSWORD}\n".encode()
    )
    async with live.http() as http:
        put = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/report.pdf",
            content=b"%PDF-1.4 quarterly figures",
            headers=tenant.admin.auth,
        )
    assert put.status_code == 201, put.text
    # The page runs the axe script it is given; the page CSP would (rightly) refuse it.
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await browser_sign_in(page, base, ADMIN, PASSWORD, enrol=True)
    pages = {
        "people": "/admin/people",
        "person": f"/admin/people/{tenant.user.id}",
        "clients": "/admin/clients",
        "client": f"/admin/clients/{tenant.client_id}",
        "operations": "/admin/operations",
        "reports": f"/admin/reports?client_id={tenant.client_id}",
    }
    for lang in ("en", "he"):
        if lang != "en":
            await choose_language(page, lang)
        for name, path in pages.items():
            answer = await page.goto(f"{base}{path}")
            assert answer is not None and answer.status == 200, (name, lang)
            # axe at desktop and at 390 px, where the layout (and what axe sees) changes.
            await look_at(page, f"console-10-{name}-{lang}")
    # The reports' charts are SVG drawn on the server, with the figures in them.
    await page.goto(f"{base}/admin/reports?client_id={tenant.client_id}")
    assert await page.locator("svg.chart").count() == 2
    assert await page.locator("#chart-activity rect.bar:not(.bar--second)").count() == 12
    # The upload above is this week's one upload, in the chart's last bar and the total.
    assert (await page.locator(".stat__value").first.inner_text()).strip() == "1"
    await page.emulate_media(media="print")
    await shoot(page, "11-reports-print")
    await context.close()
