"""What every browser page and form holds, driven without JavaScript: CSRF tokens in each
form, refused forms, the page CSP and the static assets."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures.app import World
from tests.fixtures.client_tokens import settings as settings
from tests.fixtures.page_sessions import HTML, session_cookies
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import (
    csp_directives,
    csrf_of,
    post_forms,
)
from tests.fixtures.signin import sign_in
from web.pages.render import PAGE_CSP

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
