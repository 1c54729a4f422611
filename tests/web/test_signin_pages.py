"""The browser pages of signing in, driven without JavaScript: plain form posts, as a browser
with scripts off would send them, through the password, the second factor and each step."""

from __future__ import annotations

import re

import httpx
import pyotp

from tests.fixtures.app import World
from tests.fixtures.client_tokens import settings as settings
from tests.fixtures.page_sessions import HTML, session_cookies
from tests.fixtures.pages import (
    alert_text,
    csrf_of,
    enrol,
    next_code,
    parse,
)
from tests.fixtures.pages import browser as browser
from tests.fixtures.signin import sign_in
from web.services import Services

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
