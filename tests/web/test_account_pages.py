"""The account page's settings forms, driven without JavaScript: profile, notification emails,
invitations and new recovery codes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import col, select
from starlette.types import ASGIApp

from notify.render import Item, render
from tests.fixtures.app import World
from tests.fixtures.pages import (
    account_csrf,
    alert_text,
    csrf_of,
    enrol,
    html_tag,
    next_code,
    parse,
    post_forms,
)
from tests.fixtures.session_api import actions, link_in, outbox_messages
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import ClientAccess, User
from web.services import Services

API = "/api/v1"


@pytest.fixture
async def browser(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, with a cookie jar of its own."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def user_row(services: Services, email: str) -> User | None:
    async with transaction(services.sessions) as session:
        found = await session.execute(select(User).where(User.email == email))
        return found.scalar_one_or_none()


# Profile -----------------------------------------------------------------------------------------


async def test_profile_change_switches_the_pages_to_persian(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice, second_factor=True)
    token = await account_csrf(http)
    saved = await http.post(
        "/account/profile",
        data={
            "csrf_token": token,
            "display_name": "  Alice   Liddell ",
            "timezone": "Asia/Tehran",
            "locale": "fa",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account?done=profile-saved#profile"
    page = await http.get("/account?done=profile-saved", headers={"Accept-Language": "en"})
    assert html_tag(page.text) == '<html lang="fa" dir="rtl">'
    assert 'value="Asia/Tehran"' in page.text and 'value="Alice Liddell"' in page.text
    me = (await http.get(f"{API}/me/notifications")).json()
    assert (me["locale"], me["timezone"], me["display_name"]) == (
        "fa",
        "Asia/Tehran",
        "Alice Liddell",
    )
    assert ("user.profile_updated", "success") in await actions(services)
    # Signed out, the browser stays in the language chosen.
    assert saved.cookies.get("cv_lang") == "fa"


@pytest.mark.parametrize("locale", ["ja", "zh"])
async def test_japanese_and_chinese_reach_the_pages_and_the_emails(
    http: httpx.AsyncClient, services: Services, world: World, locale: str
) -> None:
    await sign_in(http, world["bob"], second_factor=True)
    token = await account_csrf(http)
    saved = await http.post(
        "/account/profile",
        data={"csrf_token": token, "display_name": "", "timezone": "Asia/Tokyo", "locale": locale},
    )
    assert saved.status_code == 303
    page = await http.get("/account")
    assert html_tag(page.text) == f'<html lang="{locale}" dir="ltr">'
    user = await user_row(services, world["bob"].email)
    assert user is not None and user.locale == locale
    # Notification emails are written in the same language.
    item = Item(
        action="document.created",
        name="決算書.pdf",
        client="Globex",
        folder="Tax 2026",
        who="Gina",
        when="2026-03-02 09:00 (Asia/Tokyo)",
        link="http://testserver/documents/x",
    )
    email = render([item], locale=user.locale, client="Globex")
    expected = {"ja": "ClientVault: 書類の変更が1件あります", "zh": "ClientVault：1 项文件变更"}
    assert email.subject == expected[locale]
    assert "New document" not in email.text and "決算書.pdf" in email.text
    assert f'<html lang="{locale}" dir="ltr">' in email.html


async def test_an_unknown_time_zone_is_refused_and_nothing_changes(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice, second_factor=True)
    token = await account_csrf(http)
    refused = await http.post(
        "/account/profile",
        data={
            "csrf_token": token,
            "display_name": "Someone Else",
            "timezone": "Mars/Olympus_Mons",
            "locale": "he",
        },
    )
    assert refused.status_code == 422
    assert "not a time zone we know" in alert_text(refused.text)
    assert 'value="Mars/Olympus_Mons"' in refused.text, "what was typed stays in the field"
    assert 'aria-invalid="true"' in refused.text
    user = await user_row(services, alice.email)
    assert user is not None
    assert (user.display_name, user.timezone, user.locale) == ("", "UTC", "en")
    bad_language = await http.post(
        "/account/profile",
        data={"csrf_token": token, "display_name": "", "timezone": "UTC", "locale": "xx"},
    )
    assert bad_language.status_code == 422
    assert "languages in the list" in alert_text(bad_language.text)


async def test_the_profile_form_needs_the_csrf_token(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    refused = await http.post(
        "/account/profile", data={"display_name": "X", "timezone": "UTC", "locale": "fa"}
    )
    assert refused.status_code == 403
    user = await user_row(services, world["alice"].email)
    assert user is not None and user.locale == "en"


# Notification emails -----------------------------------------------------------------------------


async def test_a_notification_choice_is_saved_and_read_back(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    token = await account_csrf(http)
    page = await http.get("/account")
    [form] = [f for f in post_forms(page.text) if f.action == "/account/notifications"]
    assert form.fields["client_id"] == str(world.acme)
    saved = await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": str(world.acme),
            "cadence": "daily",
            "daily_hour": "7",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account?done=notifications-saved#notifications"
    [entry] = (await http.get(f"{API}/me/notifications")).json()["clients"]
    assert (entry["client_id"], entry["cadence"], entry["daily_hour"], entry["is_default"]) == (
        str(world.acme),
        "daily",
        7,
        False,
    )
    again = await http.get("/account")
    assert re.search(r'<option value="daily" selected>', again.text)
    assert re.search(r'<option value="7" selected>07:00</option>', again.text)

    off = await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": str(world.acme),
            "cadence": "off",
            "daily_hour": "7",
        },
    )
    assert off.status_code == 303
    [entry] = (await http.get(f"{API}/me/notifications")).json()["clients"]
    assert entry["cadence"] == "off"


async def test_notification_choices_for_other_clients_or_nonsense_are_refused(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    token = await account_csrf(http)
    hidden = await http.post(
        "/account/notifications",
        data={"csrf_token": token, "client_id": str(world.globex), "cadence": "off"},
    )
    assert hidden.status_code == 404
    nonsense = await http.post(
        "/account/notifications",
        data={"csrf_token": token, "client_id": str(world.acme), "cadence": "weekly"},
    )
    assert nonsense.status_code == 422
    assert "Choose how often" in alert_text(nonsense.text)
    [entry] = (await http.get(f"{API}/me/notifications")).json()["clients"]
    assert entry["is_default"] is True


# Invitations -------------------------------------------------------------------------------------


async def test_staff_invite_a_client_user_by_email(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    page = (await http.get("/account")).text
    assert 'action="/account/invite"' in page
    # Staff invite client users to their own clients only: no role to choose, no Globex.
    assert 'name="role" value="client"' in page and 'id="invite-role"' not in page
    assert f'value="{world.acme}"' in page and f'value="{world.globex}"' not in page
    sent = await http.post(
        "/account/invite",
        data={
            "csrf_token": token,
            "email": "carol@example.test",
            "display_name": "Carol",
            "role": "client",
            "client_id": str(world.acme),
        },
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/account?done=invited#invite"
    assert "The invitation was sent" in (await http.get("/account?done=invited")).text
    message = outbox_messages(services)[-1]
    assert message["To"] == "carol@example.test"
    secret = link_in(message, "/invite")
    assert (await http.get(f"/invite/{secret}")).status_code == 200
    carol = await user_row(services, "carol@example.test")
    assert carol is not None and carol.role == "client" and carol.display_name == "Carol"


async def test_staff_cannot_invite_an_admin_nor_to_another_client(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    before = len(outbox_messages(services))
    admin = await http.post(
        "/account/invite",
        data={"csrf_token": token, "email": "mallory@example.test", "role": "admin"},
    )
    assert admin.status_code == 403
    assert "client users only" in alert_text(admin.text)
    assert 'value="mallory@example.test"' in admin.text
    other = await http.post(
        "/account/invite",
        data={
            "csrf_token": token,
            "email": "mallory@example.test",
            "role": "client",
            "client_id": str(world.globex),
        },
    )
    assert other.status_code == 422
    assert "Choose at least one client" in alert_text(other.text)
    none = await http.post(
        "/account/invite",
        data={"csrf_token": token, "email": "mallory@example.test", "role": "client"},
    )
    assert none.status_code == 422
    assert await user_row(services, "mallory@example.test") is None
    assert len(outbox_messages(services)) == before
    taken = await http.post(
        "/account/invite",
        data={
            "csrf_token": token,
            "email": world["alice"].email,
            "role": "client",
            "client_id": str(world.acme),
        },
    )
    assert taken.status_code == 409 and "already has an account" in alert_text(taken.text)


async def test_clients_have_no_invitation_form_and_cannot_post_one(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    token = await account_csrf(http)
    assert 'action="/account/invite"' not in (await http.get("/account")).text
    refused = await http.post(
        "/account/invite",
        data={
            "csrf_token": token,
            "email": "eve@example.test",
            "role": "client",
            "client_id": str(world.acme),
        },
    )
    assert refused.status_code == 403
    assert await user_row(services, "eve@example.test") is None


async def test_an_admin_invites_anyone_to_several_clients(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    token = await account_csrf(http)
    page = (await http.get("/account")).text
    assert all(f'<option value="{r}"' in page for r in ("client", "staff", "auditor", "admin"))
    both = await http.post(
        "/account/invite",
        content=(
            f"csrf_token={token}&email=dave%40example.test&role=staff"
            f"&client_id={world.acme}&client_id={world.globex}"
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert both.status_code == 303, both.text
    dave = await user_row(services, "dave@example.test")
    assert dave is not None and dave.role == "staff"
    async with transaction(services.sessions) as session:
        granted = (
            (
                await session.execute(
                    select(ClientAccess.client_id).where(col(ClientAccess.user_id) == dave.id)
                )
            )
            .scalars()
            .all()
        )
    assert set(granted) == {world.acme, world.globex}
    assert outbox_messages(services)[-1]["To"] == "dave@example.test"


# Recovery codes ----------------------------------------------------------------------------------


async def test_new_recovery_codes_need_the_password_and_replace_the_old_ones(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice, second_factor=True)
    page = (await http.get("/account")).text
    assert 'action="/account/recovery-codes"' not in page, "no codes without an app"
    totp, old_codes = await enrol(http, password=alice.password)
    token = csrf_of((await http.get("/account")).text)
    wrong = await http.post(
        "/account/recovery-codes", data={"csrf_token": token, "password": "not her password"}
    )
    assert wrong.status_code == 422
    assert "password is not correct" in alert_text(wrong.text)
    made = await http.post(
        "/account/recovery-codes", data={"csrf_token": token, "password": alice.password}
    )
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    codes = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", made.text)
    assert len(codes) == 10 and not set(codes) & set(old_codes)
    assert "You have 10 unused recovery codes." in (await http.get("/account")).text

    # The old codes stopped working; a new one signs in in place of the app.
    await http.post("/logout", data={"csrf_token": token})
    await sign_in(http, alice)
    step = csrf_of((await http.get("/login/totp")).text)
    stale = await http.post("/login/totp", data={"csrf_token": step, "code": old_codes[0]})
    assert stale.status_code == 400
    fresh = await http.post("/login/totp", data={"csrf_token": step, "code": codes[0]})
    assert fresh.status_code == 303 and fresh.headers["location"] == "/"
    assert next_code(totp)  # the app still works too


async def test_the_account_page_links_its_sections(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get("/account")
    ids = parse(page.text).ids
    for section in ("profile", "notifications", "sessions", "password", "mfa", "tokens"):
        assert section in ids and f'href="#{section}"' in page.text
    assert "invite" not in ids
