"""Invitations, password resets and the home and account pages, driven without JavaScript:
plain form posts, as a browser with scripts off would send them."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from tests.fixtures.app import Person, World
from tests.fixtures.client_tokens import settings as settings
from tests.fixtures.page_sessions import session_cookies
from tests.fixtures.pages import (
    alert_text,
    csrf_of,
    parse,
    post_forms,
)
from tests.fixtures.pages import browser as browser
from tests.fixtures.people import invite
from tests.fixtures.signin import sign_in
from vault.accounts import email_links
from vault.accounts.identity import EmailLinkPurpose
from vault.db import transaction
from vault.models import Role, User
from web.services import Services

# Invitations and resets -------------------------------------------------------------------------


async def test_an_invitee_chooses_a_password_then_signs_in(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    secret = await invite(services, "carol@example.test", Role.CLIENT, [world.acme])
    path = f"/invite/{secret}"
    form = await http.get(path)
    assert form.status_code == 200
    assert "carol@example.test" in form.text
    assert "At least 12 characters" in form.text, "the minimum is stated up front"
    assert [f.action for f in post_forms(form.text)] == [""], "posts back to its own URL"

    mismatch = await http.post(
        path, data={"password": "quiet harbour lantern", "password_confirm": "something else"}
    )
    assert mismatch.status_code == 422
    assert "not the same" in alert_text(mismatch.text)
    weak = await http.post(path, data={"password": "short", "password_confirm": "short"})
    assert weak.status_code == 422
    assert "too short" in alert_text(weak.text)
    assert not session_cookies(weak)

    password = "quiet harbour lantern"
    done = await http.post(path, data={"password": password, "password_confirm": password})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?done=password-set"
    assert "Your password is set" in (await http.get(done.headers["location"])).text

    again = await http.get(path)
    assert again.status_code == 400
    assert "This link no longer works" in again.text
    carol = Person(world.acme, "carol@example.test", Role.CLIENT, "", password)
    assert (await sign_in(http, carol)).headers["location"] == "/"
    assert "Acme" in (await http.get("/")).text


async def test_reset_request_reads_the_same_for_any_address(
    http: httpx.AsyncClient, world: World
) -> None:
    known = await http.post("/reset", data={"email": world["alice"].email})
    unknown = await http.post("/reset", data={"email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert "Check your email" in known.text


async def test_a_reset_link_sets_a_new_password_once(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    async with transaction(services.sessions) as session:
        user = await session.get(User, alice.id)
        assert user is not None
        secret = await email_links.issue(
            session, EmailLinkPurpose.PASSWORD_RESET, user, valid_for=timedelta(minutes=30)
        )
    path = f"/reset/{secret}"
    assert alice.email in (await http.get(path)).text
    new = "marble orchard telescope"
    done = await http.post(path, data={"password": new, "password_confirm": new})
    assert done.status_code == 303 and done.headers["location"] == "/login?done=password-reset"
    assert (await http.post(path, data={"password": new, "password_confirm": new})).status_code == (
        400
    )
    old = await http.post("/login", data={"email": alice.email, "password": alice.password})
    assert old.status_code == 400
    await sign_in(http, alice, new)


# The home and account pages ------------------------------------------------------------------


async def test_home_lists_only_the_clients_one_can_see(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"])
    home = await http.get("/")
    assert "Signed in as alice@example.test" in home.text and "Client" in home.text
    assert "Acme" in home.text and "Globex" not in home.text
    # One client: its folders are on the home page itself.
    assert f'href="/folders/{world.acme_folder}"' in home.text
    assert 'href="/account"' in home.text


async def test_a_token_is_shown_once_and_revoked_from_the_account_page(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice)
    token = csrf_of((await http.get("/account")).text)
    bad = await http.post(
        "/account/tokens", data={"csrf_token": token, "name": "n", "scope": "read", "days": "91"}
    )
    # At most auth.token_max_days (90 by default), and the password again (issue 13 item 4).
    assert bad.status_code == 422 and "between 1 and 90 days" in alert_text(bad.text)
    form = {"csrf_token": token, "name": "nightly backup", "scope": "read", "days": "7"}
    for password in ("", "not her password"):
        refused = await http.post("/account/tokens", data={**form, "password": password})
        assert refused.status_code == 422
        assert "Your password is not correct, so no token was made." in alert_text(refused.text)
    assert "nightly backup</strong>" not in (await http.get("/account")).text
    created = await http.post("/account/tokens", data={**form, "password": alice.password})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = parse(created.text).ids["new-token"].strip()
    assert secret.startswith("cvt_")
    me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200

    account = await http.get("/account")
    assert "nightly backup" in account.text and secret not in account.text
    # When and from where it was last used (issue 13 item 4).
    assert re.search(r"last used [^<]* from 127\.0\.0\.1", account.text), account.text
    row = re.search(
        r'nightly backup</strong>.*?action="(/account/tokens/[^"]+/revoke)"', account.text, re.S
    )
    assert row is not None
    revoked = await http.post(row.group(1), data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/account?done=token-revoked"
    gone = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401
    # The fixture's own token, created earlier, was left alone.
    still = await http.get("/api/v1/me", headers=world["alice"].auth)
    assert still.status_code == 200


async def test_sessions_are_listed_and_ended_from_the_account_page(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"])
    await sign_in(browser, world["alice"])
    account = await http.get("/account")
    assert "This browser" in account.text
    [end_one] = [f for f in post_forms(account.text) if f.action.endswith("/end")]
    ended = await http.post(end_one.action, data=end_one.fields)
    assert ended.headers["location"] == "/account?done=session-ended"
    assert (await browser.get("/")).headers["location"] == "/login"
    assert (await http.get("/")).status_code == 200

    await sign_in(browser, world["alice"])
    token = csrf_of((await http.get("/account")).text)
    everywhere = await http.post("/account/sessions/end-others", data={"csrf_token": token})
    assert everywhere.headers["location"] == "/account?done=sessions-ended"
    assert (await browser.get("/account")).headers["location"] == "/login"
    assert (await http.get("/account")).status_code == 200


async def test_changing_the_password_from_the_account_page(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice)
    token = csrf_of((await http.get("/account")).text)
    new = "copper kettle meadow"

    async def change(current: str, confirm: str = new) -> httpx.Response:
        return await http.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": current,
                "new_password": new,
                "new_password_confirm": confirm,
            },
        )

    wrong = await change("not my password")
    assert wrong.status_code == 422
    assert alert_text(wrong.text) == "Your current password is not correct."
    mismatch = await change(alice.password, confirm="copper kettle")
    assert mismatch.status_code == 422 and "not the same" in alert_text(mismatch.text)
    done = await change(alice.password)
    assert done.headers["location"] == "/account?done=password-changed"
    assert (await http.get("/account")).status_code == 200, "this session stays"
    refused = await http.post("/login", data={"email": alice.email, "password": alice.password})
    assert refused.status_code == 400
    await sign_in(http, alice, new)
