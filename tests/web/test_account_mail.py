"""Account emails (invitation, password reset, …): what they list, the language they are
written in, and how the right-to-left ones look in a real browser."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from playwright.async_api import Browser

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.browser import DESKTOP, artifacts
from vault import accounts
from vault.db import transaction
from vault.errors import ProfileError
from vault.models import Role, User
from web import account_mail
from web.services import Services

API = "/api/v1"


def outbox(services: Services, to: str) -> list[EmailMessage]:
    folder = services.settings.outbox_path
    paths = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    found = [
        email.message_from_bytes(p.read_bytes(), _class=EmailMessage, policy=email.policy.default)
        for p in paths
    ]
    return [m for m in found if m["To"] == to]


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
async def test_an_api_invitation_to_the_firm_lists_no_clients(
    http: httpx.AsyncClient, services: Services, world: World, role: Role
) -> None:
    # The vault gives auditors and admins no clients, whatever the request asked for.
    address = f"new-{role.value}@example.test"
    made = await http.post(
        f"{API}/invitations",
        json={"email": address, "role": role.value, "client_ids": [str(world.acme)]},
        headers=world["ada"].auth,
    )
    assert made.status_code == 201, made.text
    [message] = outbox(services, address)
    text, html = parts(message)
    assert "Acme" not in text and "Acme" not in html


async def test_a_staff_invitation_lists_the_clients_granted(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    made = await http.post(
        f"{API}/invitations",
        json={"email": "new-staff@example.test", "role": "staff", "client_ids": [str(world.acme)]},
        headers=world["ada"].auth,
    )
    assert made.status_code == 201, made.text
    [message] = outbox(services, "new-staff@example.test")
    text, html = parts(message)
    assert "Acme" in text and "Acme" in html


@pytest.mark.parametrize("name", ["Eve\u202egnp.exe", "Eve\u2067x\u2069", "A\u0007B"])
async def test_a_new_account_refuses_a_display_name_with_direction_or_control_characters(
    services: Services, name: str
) -> None:
    async with transaction(services.sessions) as session:
        with pytest.raises(ProfileError):
            await accounts.create_user(
                session,
                TEST_CONTEXT,
                email="spoof@example.test",
                role=Role.STAFF,
                display_name=name,
            )


@pytest.mark.parametrize("name", ["Eve\u202egnp.exe", "Eve\u2067x\u2069"])
async def test_an_api_invitation_refuses_a_display_name_with_direction_characters(
    http: httpx.AsyncClient, services: Services, world: World, name: str
) -> None:
    made = await http.post(
        f"{API}/invitations",
        json={"email": "spoof@example.test", "client_ids": [str(world.acme)], "display_name": name},
        headers=world["sam"].auth,
    )
    assert made.status_code == 422, made.text
    assert outbox(services, "spoof@example.test") == []


async def set_locale(services: Services, user_id: object, code: str, name: str = "") -> User:
    async with transaction(services.sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.locale = code
        if name:
            user.display_name = name
        return user


async def test_an_invitation_is_written_in_the_inviters_language(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_locale(services, world["sam"].id, "fa", name="سام")
    made = await http.post(
        f"{API}/invitations",
        json={"email": "dara@example.test", "client_ids": [str(world.acme)]},
        headers=world["sam"].auth,
    )
    assert made.status_code == 201, made.text
    [message] = outbox(services, "dara@example.test")
    assert message["Subject"] == "به ClientVault دعوت شده‌اید"
    assert message["Content-Language"] == "fa"
    text, html = parts(message)
    assert '<html lang="fa" dir="rtl">' in html
    # The inviter's and the client's names keep their own direction inside the sentence.
    assert "<bdi>سام</bdi>" in html and "<bdi>Acme</bdi>" in html
    assert "\u2068Acme\u2069" in text and "/invite/" in text


async def test_a_reset_is_written_in_the_recipients_saved_language(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_locale(services, world["alice"].id, "he")
    asked = await http.post(f"{API}/password-reset", json={"email": "alice@example.test"})
    assert asked.status_code in (202, 204), asked.text
    [message] = outbox(services, "alice@example.test")
    assert message["Subject"] == "איפוס הסיסמה שלך ב-ClientVault"
    _, html = parts(message)
    assert '<html lang="he" dir="rtl">' in html


SHOTS = [(template, code) for template in ("invitation", "reset") for code in ("fa", "he")]


@pytest.mark.parametrize(("template", "code"), SHOTS)
async def test_right_to_left_account_emails_in_chromium(
    browser: Browser, services: Services, world: World, template: str, code: str
) -> None:
    names = {"fa": "سارا احمدی", "he": "שרה כהן"}
    recipient = await set_locale(services, world["alice"].id, code)
    if template == "invitation":
        inviter = await set_locale(services, world["sam"].id, code, name=names[code])
        await account_mail.send_invitation(
            services, recipient, "s3cret", inviter=inviter, valid_for=timedelta(hours=72)
        )
    else:
        await account_mail.send(
            services,
            "reset",
            recipient,
            link=account_mail.link(services, "/reset/s3cret"),
            expires=account_mail.when(datetime.now(UTC) + timedelta(minutes=30)),
        )
    [message] = outbox(services, recipient.email)
    _, html = parts(message)
    assert f'<html lang="{code}" dir="rtl">' in html
    page = await browser.new_page(viewport=DESKTOP)
    try:
        # Offline, as a mail client shows it: nothing may be fetched from anywhere.
        await page.route("**/*", lambda route: route.abort())
        await page.set_content(html, wait_until="load")
        shot = artifacts() / f"account-email-{template}-{code}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert await page.evaluate("document.documentElement.lang") == code
        assert await page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        # The button sits on the right, where a right-to-left reader starts.
        button = await page.get_by_role("link").first.bounding_box()
        assert button is not None and button["x"] + button["width"] > DESKTOP["width"] / 2
    finally:
        await page.close()
