"""The browser pages of signing in, driven without JavaScript: plain form posts, as a browser
with scripts off would send them."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pyotp
import pytest

from tests.fixtures.app import Person, World
from tests.fixtures.pages import (
    alert_text,
    csp_directives,
    csrf_of,
    enrol,
    next_code,
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
from web.pages.render import PAGE_CSP
from web.services import Services
from web.settings import Settings

HTML = "text/html"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The firm lets client users hold personal access tokens (`[auth] client_tokens`): these
    tests are about tokens, made by a client user."""
    return settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"client_tokens": True})}
    )


def session_cookies(response: httpx.Response) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith("cv_session=")]


# Forms and CSRF --------------------------------------------------------------------------------


async def test_every_post_form_of_a_session_carries_its_csrf_token(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"])
    for path in ("/", "/account"):
        page = await http.get(path)
        assert page.status_code == 200
        forms = post_forms(page.text)
        assert len(forms) >= (1 if path == "/" else 4), path
        tokens = {f.fields.get("csrf_token") for f in forms}
        assert len(tokens) == 1 and None not in tokens and "" not in tokens, (path, forms)


async def test_pre_session_forms_carry_no_csrf_token(http: httpx.AsyncClient) -> None:
    for path in ("/login", "/reset"):
        page = await http.get(path)
        assert page.status_code == 200
        assert [f.action for f in post_forms(page.text)] == [path]
        assert "csrf_token" not in page.text


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/logout", {}),
        ("/account/sessions/end-others", {}),
        ("/account/tokens", {"name": "x", "scope": "read", "days": "5"}),
        (
            "/account/password",
            {
                "current_password": "alice likes long passphrases",
                "new_password": "a brand new passphrase here",
                "new_password_confirm": "a brand new passphrase here",
            },
        ),
    ],
)
async def test_posts_without_the_right_csrf_token_get_a_403_page_and_change_nothing(
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    world: World,
    path: str,
    data: dict[str, str],
    token: str | None,
) -> None:
    await sign_in(http, world["alice"])
    before = await http.get("/account")
    if token is not None:
        data = {**data, "csrf_token": token}
    refused = await http.post(path, data=data)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(HTML)
    assert "This form has expired" in refused.text
    after = await http.get("/account")
    assert after.status_code == 200, "the session survived"
    # The same tokens and sessions as before, and the password still the old one.
    assert post_forms(after.text) == post_forms(before.text)
    await sign_in(browser, world["alice"])


async def test_a_form_from_another_site_is_refused(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"]
    data = {"email": alice.email, "password": alice.password}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        refused = await http.post("/login", data=data, headers=headers)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith(HTML)
        assert not session_cookies(refused)
    same_site = await http.post("/login", data=data, headers={"origin": "http://testserver"})
    assert same_site.status_code == 303


async def test_a_form_of_another_encoding_gets_a_readable_error(
    http: httpx.AsyncClient, world: World
) -> None:
    response = await http.post(
        "/login", json={"email": world["alice"].email, "password": world["alice"].password}
    )
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(HTML)
    assert not session_cookies(response)


# Signing in -------------------------------------------------------------------------------------


async def test_the_login_page_sets_no_cookie_until_the_password_is_right(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    page = await http.get("/login")
    assert page.status_code == 200
    assert not page.headers.get_list("set-cookie")
    wrong = await http.post("/login", data={"email": alice.email, "password": "not her password"})
    assert wrong.status_code == 400
    assert not wrong.headers.get_list("set-cookie")
    assert f'value="{alice.email}"' in wrong.text, "the address stays in the field"
    right = await sign_in(http, alice)
    [cookie] = session_cookies(right)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= flags
    assert right.headers["location"] == "/"


async def test_unknown_address_and_wrong_password_read_the_same(
    http: httpx.AsyncClient, world: World
) -> None:
    wrong = await http.post(
        "/login", data={"email": world["alice"].email, "password": "not her password"}
    )
    unknown = await http.post(
        "/login", data={"email": "nobody@example.test", "password": "not her password"}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert (
        alert_text(wrong.text) == alert_text(unknown.text) == ("Wrong email address or password.")
    )


async def test_a_lockout_is_a_readable_page_with_the_wait(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    bob = world["bob"]
    for _ in range(services.settings.auth.max_failures):
        refused = await http.post("/login", data={"email": bob.email, "password": "guess guess"})
        assert refused.status_code == 400
    locked = await http.post("/login", data={"email": bob.email, "password": bob.password})
    assert locked.status_code == 429
    assert locked.headers["content-type"].startswith(HTML)
    wait = int(locked.headers["retry-after"])
    assert 0 < wait <= 60 * services.settings.auth.lockout_minutes
    message = alert_text(locked.text)
    assert message.startswith("Too many failed attempts. Try again in ")
    assert re.search(r"in \d+ (second|minute)s?\.", message), message
    assert not session_cookies(locked)


async def test_password_totp_home_without_javascript(http: httpx.AsyncClient, world: World) -> None:
    sam = world["sam"]  # staff: TOTP is required
    first = await sign_in(http, sam)
    assert first.headers["location"] == "/login/enrol"
    enrol_page = await http.get("/login/enrol")
    assert enrol_page.headers["cache-control"] == "no-store"
    assert "<svg" in enrol_page.text and "<script" not in enrol_page.text.split("</head>")[1]
    totp, codes = await enrol(http)
    assert len(codes) == 10 and len(set(codes)) == 10
    home = await http.get("/")
    assert home.status_code == 200
    assert f"Signed in as {sam.email}" in home.text

    signed_out = await http.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?done=signed-out"
    assert any("Max-Age=0" in c or "expires=" in c.lower() for c in session_cookies(signed_out))
    assert (await http.get("/")).headers["location"] == "/login"
    assert "You are signed out." in (await http.get("/login?done=signed-out")).text

    second = await sign_in(http, sam)
    assert second.headers["location"] == "/login/totp"
    totp_page = await http.get("/login/totp")
    assert totp_page.status_code == 200
    token = csrf_of(totp_page.text)
    wrong = await http.post("/login/totp", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400
    assert "That code did not work" in alert_text(wrong.text)
    done = await http.post("/login/totp", data={"csrf_token": token, "code": next_code(totp)})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert session_cookies(done), "the session id changes as it gains the second factor"
    assert f"Signed in as {sam.email}" in (await http.get("/")).text

    # A recovery code stands in for the app, once.
    await http.post("/logout", data={"csrf_token": csrf_of((await http.get("/")).text)})
    await sign_in(http, sam)
    token = csrf_of((await http.get("/login/totp")).text)
    used = await http.post("/login/totp", data={"csrf_token": token, "code": codes[0].lower()})
    assert used.status_code == 303 and used.headers["location"] == "/"


async def test_a_wrong_enrolment_code_keeps_the_pending_secret(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["ada"])
    page = await http.get("/login/enrol")
    secret = parse(page.text).ids["totp-secret"].strip()
    token = csrf_of(page.text)
    wrong = await http.post("/login/enrol", data={"csrf_token": token, "code": "12"})
    assert wrong.status_code == 400
    assert "did not match" in alert_text(wrong.text)
    assert secret not in wrong.text and "<svg" not in wrong.text
    assert (await http.get("/")).headers["location"] == "/login/enrol", "still not signed in"
    right = await http.post(
        "/login/enrol", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert right.status_code == 200
    assert "Your recovery codes" in right.text
    assert right.headers["cache-control"] == "no-store"


async def test_a_signed_in_client_turns_on_totp_from_the_account_page(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"])  # a client: TOTP is optional
    account = await http.get("/account")
    assert 'href="/login/enrol"' in account.text
    # Signed in already, the password is asked again (issue 13 item 8).
    page = await http.get("/login/enrol")
    code = pyotp.TOTP(parse(page.text).ids["totp-secret"].strip()).now()
    refused = await http.post(
        "/login/enrol",
        data={"csrf_token": csrf_of(page.text), "code": code, "password": "not hers"},
    )
    assert refused.status_code == 400
    assert "Your password is not correct" in alert_text(refused.text)
    _, codes = await enrol(http, password=world["alice"].password)
    assert len(codes) == 10
    account = await http.get("/account")
    assert "You have 10 unused recovery codes." in account.text
    assert 'href="/login/enrol"' not in account.text
    again = await http.get("/login/enrol")
    assert again.status_code == 409
    assert "already set up" in again.text and "<svg" not in again.text
    # From now on a password alone is not enough.
    await http.post("/logout", data={"csrf_token": csrf_of(account.text)})
    assert (await sign_in(http, world["alice"])).headers["location"] == "/login/totp"


async def test_partially_signed_in_sessions_are_sent_to_their_step(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    for path in ("/", "/account", "/login/totp", "/login/enrol"):
        response = await browser.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path

    await sign_in(http, world["sam"])  # must enrol
    for path in ("/", "/account", "/login", "/login/totp"):
        response = await http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login/enrol"), path
    totp, _ = await enrol(http)
    await http.post("/logout", data={"csrf_token": csrf_of((await http.get("/")).text)})

    await sign_in(http, world["sam"])  # must give a code
    for path in ("/", "/account", "/login", "/login/enrol"):
        response = await http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login/totp"), path
    # Nor can a half-signed-in session act: the account forms answer with the same redirect.
    token = csrf_of((await http.get("/login/totp")).text)
    refused = await http.post("/account/tokens", data={"csrf_token": token, "days": "1"})
    assert refused.headers["location"] == "/login/totp"

    await http.post("/login/totp", data={"csrf_token": token, "code": next_code(totp)})
    for path in ("/login", "/login/totp"):
        response = await http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/"), path


# Content Security Policy ---------------------------------------------------------------------


async def test_every_page_has_the_page_csp_without_unsafe_inline(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    pages = [await browser.get(p) for p in ("/login", "/reset", "/invite/nope", "/reset/nope")]
    pages.append(await browser.post("/reset", data={"email": "x@example.test"}))
    await sign_in(browser, world["sam"])
    pages.append(await browser.get("/login/enrol"))
    await sign_in(http, world["alice"])
    pages += [await http.get("/"), await http.get("/account")]
    token = csrf_of(pages[-1].text)
    created = await http.post(
        "/account/tokens",
        data={
            "csrf_token": token,
            "scope": "read",
            "days": "3",
            "password": world["alice"].password,
        },
    )
    pages.append(created)
    pages.append(await http.post("/logout", data={"csrf_token": "wrong"}))
    assert [p.status_code for p in pages] == [200, 200, 400, 400, 200, 200, 200, 200, 201, 403]
    for response in pages:
        where = f"{response.request.method} {response.request.url.path}"
        assert response.headers["content-type"].startswith(HTML), where
        [header] = response.headers.get_list("content-security-policy")
        assert header == PAGE_CSP, where
        assert "unsafe" not in header, where
        csp = csp_directives(header)
        assert csp["default-src"] == ["'none'"] and csp["script-src"] == ["'self'"], where
        assert csp["style-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"], where
        # What the policy would block must not be there in the first place.
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), where
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", response.text), where
        assert response.headers["cache-control"] == "no-store", where
        # Not no-referrer: under it browsers post forms with `Origin: null`, which the
        # origin check refuses; same-origin still sends nothing to other sites.
        assert response.headers["referrer-policy"] == "same-origin", where

    api = await http.get("/api/v1/me", headers=world["alice"].auth)
    assert api.headers["content-security-policy"].startswith("default-src 'none';")
    assert "script-src" not in api.headers["content-security-policy"]


async def test_static_assets_are_served(http: httpx.AsyncClient) -> None:
    css = await http.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text
    script = await http.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


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
