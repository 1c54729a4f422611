"""A new staff member's first sign-in, end to end, in a real browser against a real server.

An admin invites them through the API; the invitation travels by SMTP to a real (aiosmtpd)
server; the system's Chromium follows the emailed link, sets a password, signs in, enrols
TOTP from the key shown on the page, keeps the recovery codes, signs out and back in with a
code. Every step is saved as a screenshot, at desktop and phone width, into
`$CLIENTVAULT_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
)

from tests.fixtures.browser import DESKTOP, look_at
from tests.fixtures.live import LiveApp, LiveAppFactory
from tests.fixtures.smtp import SMTPSink, wait_for_mail

STAFF_EMAIL = "sam.staff@example.test"
PASSWORD = "paper lantern over the harbour"


class Camera:
    """Numbered screenshots of each step, at desktop and at phone width."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.taken: list[Path] = []

    async def shoot(self, number: int, name: str) -> None:
        self.taken += await look_at(self.page, f"signin-{number:02d}-{name}")


async def heading(page: Page) -> str:
    return (await page.locator("h1").inner_text()).strip()


async def session_cookie(context: BrowserContext) -> dict[str, object]:
    [cookie] = [c for c in await context.cookies() if c.get("name") == "cv_session"]
    return dict(cookie)


async def alert(page: Page) -> str:
    return " ".join((await page.get_by_role("alert").inner_text()).split())


async def start_portal(live_app: LiveAppFactory, smtp_sink: SMTPSink) -> LiveApp:
    return await live_app(
        config={
            "smtp": {
                "host": smtp_sink.host,
                "port": smtp_sink.port,
                "starttls": False,
                "from": "ClientVault <no-reply@example.test>",
            },
            # The smallest Argon2id cost the settings allow: the test is about the pages.
            "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
        }
    )


async def test_invited_staff_member_signs_in_with_totp(
    live_app: LiveAppFactory, smtp_sink: SMTPSink, browser: Browser
) -> None:
    live = await start_portal(live_app, smtp_sink)
    acme = await live.add_client("Acme")
    admin = await live.add_user("admin@example.test", role="admin")
    async with live.http() as http:
        invited = await http.post(
            "/api/v1/invitations",
            json={
                "email": STAFF_EMAIL,
                "role": "staff",
                "client_ids": [acme],
                "display_name": "Sam Staff",
            },
            headers=admin.auth,
        )
    assert invited.status_code == 201, invited.text
    assert invited.json()["email_sent"] is True

    # 1. The invitation email, as a mail client shows it (offline, nothing fetched).
    message = await wait_for_mail(smtp_sink, STAFF_EMAIL)
    assert message["Subject"] == "You are invited to ClientVault"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    links = re.findall(
        rf"{re.escape(live.base_url)}/invite/[A-Za-z0-9_-]+", text_part.get_content()
    )
    assert len(links) == 1, text_part.get_content()
    link = links[0]
    assert f'href="{link}"' in html_part.get_content()

    context = await browser.new_context(viewport=DESKTOP)
    email_page = await context.new_page()
    await email_page.route("**/*", lambda route: route.abort())
    await email_page.set_content(html_part.get_content(), wait_until="load")
    email_camera = Camera(email_page)
    await email_camera.shoot(1, "invitation-email")
    assert await email_page.get_by_role("link", name="Choose your password").is_visible()
    await email_page.close()

    page = await context.new_page()
    camera = Camera(page)
    violations: list[str] = []

    def on_console(entry: ConsoleMessage) -> None:
        if "Content Security Policy" in entry.text:
            violations.append(entry.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: violations.append(f"page error: {error}"))

    # 2. The invitation's page: choose a password, the rule stated up front.
    await page.goto(link)
    assert await heading(page) == "Choose your password"
    assert STAFF_EMAIL in await page.locator("main").inner_text()
    hint = await page.locator("#password-hint").inner_text()
    assert "At least 12 characters" in hint
    # The address is there for password managers only.
    assert not await page.locator("input[name=username]").is_visible()
    # The listener does hear the policy: an inline style is refused and reported.
    async with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        await page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<div style=\"color:red\">x</div>')"
        )
    assert violations, "a CSP violation reaches the console listener"
    violations.clear()
    await page.reload()
    await page.fill("#password", PASSWORD)
    await page.fill("#password_confirm", PASSWORD)
    await camera.shoot(2, "set-password")

    # 3. A password the policy refuses: the reason is shown next to the form.
    weak = "abcabcabcabcabc"
    await page.fill("#password", weak)
    await page.fill("#password_confirm", weak)
    await page.get_by_role("button", name="Set password").click()
    refusal = await alert(page)  # waits for the answer to the post
    assert refusal.startswith("The password is too predictable"), refusal
    assert urlsplit(page.url).path == urlsplit(link).path
    await camera.shoot(3, "password-refused")

    await page.fill("#password", PASSWORD)
    await page.fill("#password_confirm", PASSWORD)
    await page.get_by_role("button", name="Set password").click()
    await page.wait_for_url(f"{live.base_url}/login?done=password-set")

    # 4. Sign in with the new password; no session cookie yet.
    assert await heading(page) == "Sign in"
    assert "Your password is set" in await page.get_by_role("status").inner_text()
    assert not [c for c in await context.cookies() if c.get("name") == "cv_session"]
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", PASSWORD)
    await camera.shoot(4, "sign-in")
    await page.get_by_role("button", name="Sign in").click()

    # 5. Staff must enrol TOTP before anything else: read the key, as an app would scan it.
    await page.wait_for_url(f"{live.base_url}/login/enrol")
    assert await heading(page) == "Set up your authenticator app"
    half_signed_in = await session_cookie(context)
    assert half_signed_in["httpOnly"] is True and half_signed_in["sameSite"] == "Lax"
    assert await page.locator("svg.totp-qr").is_visible()
    await page.get_by_text("Cannot scan? Enter this key by hand").click()
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    totp = pyotp.TOTP(secret)
    await page.fill("#code", totp.now())
    await camera.shoot(5, "enrol-totp")
    async with page.expect_response(
        lambda r: r.url.endswith("/login/enrol") and r.request.method == "POST"
    ) as answer:
        await page.get_by_role("button", name="Turn on two-step sign-in").click()
    enrolled = await answer.value
    assert enrolled.status == 200
    assert enrolled.headers["cache-control"] == "no-store"

    # 6. Ten recovery codes, shown once; the session id changed with the new privilege.
    assert await heading(page) == "Your recovery codes"
    codes = [c.strip() for c in await page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){4}", c) for c in codes), codes
    signed_in = await session_cookie(context)
    assert signed_in["value"] != half_signed_in["value"]
    assert signed_in["httpOnly"] is True and signed_in["sameSite"] == "Lax"
    await camera.shoot(6, "recovery-codes")
    await page.get_by_role("link", name="I have saved them: continue").click()

    # 7. Home.
    await page.wait_for_url(f"{live.base_url}/")
    assert await heading(page) == "Welcome, Sam Staff"
    assert f"Signed in as {STAFF_EMAIL}" in await page.locator(".signed-in-as").inner_text()
    assert await page.locator(".tile__title").all_inner_texts() == ["Acme"]
    await camera.shoot(7, "home")

    # 8. The account page: two-step sign-in is on, this browser is listed.
    await page.get_by_role("link", name="Account", exact=True).click()
    await page.wait_for_url(f"{live.base_url}/account")
    assert await heading(page) == "Your account"
    mfa = await page.locator("section[aria-labelledby='mfa-heading']").inner_text()
    assert "On" in mfa and "10 unused recovery codes" in mfa
    assert (
        "This browser"
        in await page.locator("section[aria-labelledby='sessions-heading']").inner_text()
    )
    await camera.shoot(8, "account")

    # 9. Sign out: the cookie is gone, home sends back to sign-in.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{live.base_url}/login?done=signed-out")
    assert "You are signed out." in await page.get_by_role("status").inner_text()
    assert not [c for c in await context.cookies() if c.get("name") == "cv_session"]
    await page.goto(f"{live.base_url}/")
    assert urlsplit(page.url).path == "/login"
    await camera.shoot(9, "signed-out")

    # 10. Password, then a code: the step after the enrolment's, since each works once.
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{live.base_url}/login/totp")
    assert await heading(page) == "Enter your code"
    await page.fill("#code", totp.at(time.time() + pyotp.TOTP(secret).interval))
    await camera.shoot(10, "second-factor")
    await page.get_by_role("button", name="Continue").click()

    # 11. Home again.
    await page.wait_for_url(f"{live.base_url}/")
    assert await heading(page) == "Welcome, Sam Staff"
    await camera.shoot(11, "home-again")

    assert violations == [], violations
    shots = sorted(p.name for p in email_camera.taken + camera.taken)
    assert len(shots) == 22, shots
    await context.close()
