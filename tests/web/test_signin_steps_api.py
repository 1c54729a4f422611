"""Signing in through the JSON API, step by step: the password, the second factor, the
session it opens, CSRF on cookie requests, and the cookies and ids those sessions get.

Every test runs on SQLite and PostgreSQL (the `database_url` fixture behind `http`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from sqlmodel import col

from tests.fixtures.app import World
from tests.fixtures.client_tokens import settings as settings
from tests.fixtures.session_api import (
    API,
    actions,
    csrf,
    enrol,
    fresh,
)
from tests.fixtures.signin import sign_in
from vault.accounts.identity import BrowserSession
from vault.db import transaction
from web.app import create_app
from web.services import Services

COOKIE = "cv_session"


# Helpers ------------------------------------------------------------------------------------


# Password step ------------------------------------------------------------------------------


async def test_client_signs_in_with_password_alone(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        f"{API}/session", json={"email": world["alice"].email, "password": world["alice"].password}
    )
    assert response.status_code == 200
    assert response.json()["mfa_required"] is False
    assert response.json()["mfa_enrolment_required"] is False
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    me = await http.get(f"{API}/me")
    assert me.status_code == 200
    assert me.json()["email"] == world["alice"].email


async def test_unknown_and_known_emails_get_the_same_answer(
    http: httpx.AsyncClient, world: World
) -> None:
    wrong = await http.post(
        f"{API}/session", json={"email": world["alice"].email, "password": "not her password!"}
    )
    unknown = await http.post(
        f"{API}/session", json={"email": "nobody@example.test", "password": "not her password!"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    drop = {"date", "content-length", "x-request-id"}  # differ on every answer
    assert {k: v for k, v in wrong.headers.items() if k not in drop} == {
        k: v for k, v in unknown.headers.items() if k not in drop
    }
    assert "set-cookie" not in wrong.headers


async def test_password_is_checked_exactly_as_typed(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"]
    for variant in (alice.password.upper(), alice.password[:-1], alice.password + " "):
        response = await http.post(
            f"{API}/session", json={"email": alice.email, "password": variant}
        )
        assert response.status_code == 401


async def test_no_default_accounts(http: httpx.AsyncClient, world: World) -> None:
    for email_, password in (("admin", "admin"), ("admin@localhost", "admin"), ("root", "root")):
        response = await http.post(f"{API}/session", json={"email": email_, "password": password})
        assert response.status_code == 401


# Second factor ------------------------------------------------------------------------------


async def test_staff_must_enrol_totp_before_anything_else(
    http: httpx.AsyncClient, world: World
) -> None:
    started = (await sign_in(http, world["sam"], api=True)).json()
    assert started["mfa_enrolment_required"] is True
    token = started["csrf_token"]
    assert (await http.get(f"{API}/me")).status_code == 401
    assert (await http.get(f"{API}/clients")).status_code == 401

    begun = await http.post(f"{API}/me/totp", headers=csrf(token))
    secret = begun.json()["secret"]
    assert "<script" not in begun.json()["qr_svg"].lower()
    wrong = await http.post(f"{API}/me/totp/confirm", json={"code": "000000"}, headers=csrf(token))
    assert wrong.status_code in (400, 401, 422)
    assert (await http.get(f"{API}/me")).status_code == 401

    before = http.cookies[COOKIE]
    confirmed = await http.post(
        f"{API}/me/totp/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=csrf(token)
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert http.cookies[COOKIE] != before, "enrolment finishing sign-in must rotate the session"
    assert (await http.get(f"{API}/me")).status_code == 200


async def test_totp_sign_in_and_replay_refused(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam = world["sam"]
    totp, _, _ = await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    # The enrolment used the current step: the next one is the first fresh code.
    code = totp.at(time.time() + 30)

    async with fresh(http) as first:
        started = (await sign_in(first, sam, api=True)).json()
        assert started["mfa_required"] is True
        ok = await first.post(
            f"{API}/session/totp", json={"code": code}, headers=csrf(started["csrf_token"])
        )
        assert ok.status_code == 200, ok.text
        assert (await first.get(f"{API}/me")).status_code == 200

    async with fresh(http) as second:
        started = (await sign_in(second, sam, api=True)).json()
        replay = await second.post(
            f"{API}/session/totp", json={"code": code}, headers=csrf(started["csrf_token"])
        )
        assert replay.status_code == 401
        assert (await second.get(f"{API}/me")).status_code == 401
    assert ("auth.mfa", "failure") in await actions(services)


async def test_recovery_code_works_once(http: httpx.AsyncClient, world: World) -> None:
    sam = world["sam"]
    _, codes, _ = await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    for expected in (200, 401):
        async with fresh(http) as browser:
            started = (await sign_in(browser, sam, api=True)).json()
            response = await browser.post(
                f"{API}/session/totp",
                json={"code": codes[3].lower().replace("-", " ")},
                headers=csrf(started["csrf_token"]),
            )
            assert response.status_code == expected, response.text


async def test_partial_session_cannot_use_totp_setup_or_be_used_as_bearer(
    http: httpx.AsyncClient, world: World
) -> None:
    """Nextcloud CVE-2026-45691 and FileRise CVE-2026-44460: a password-only session got at
    the API through another door, or read the live TOTP secret."""
    sam = world["sam"]
    await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    async with fresh(http) as browser:
        started = (await sign_in(browser, sam, api=True)).json()
        token = started["csrf_token"]
        assert (await browser.post(f"{API}/me/totp", headers=csrf(token))).status_code == 401
        assert (await browser.get(f"{API}/me/totp")).status_code == 401
        cookie = browser.cookies[COOKIE]
        as_bearer = await browser.get(f"{API}/me", headers={"Authorization": f"Bearer {cookie}"})
        assert as_bearer.status_code == 401


# Sessions ------------------------------------------------------------------------------------


async def test_session_fixation_is_impossible(http: httpx.AsyncClient, world: World) -> None:
    sam = world["sam"]
    totp, _, _ = await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    async with fresh(http) as victim:
        planted = "attacker-chosen-session-value"
        victim.cookies.set(COOKIE, planted, domain="testserver.local")
        started = (await sign_in(victim, sam, api=True)).json()
        after_password = victim.cookies[COOKIE]
        assert after_password != planted
        ok = await victim.post(
            f"{API}/session/totp",
            json={"code": totp.at(time.time() + 30)},
            headers=csrf(started["csrf_token"]),
        )
        assert ok.status_code == 200
        after_totp = victim.cookies[COOKIE]
        assert after_totp not in (planted, after_password)
        assert ok.json()["csrf_token"] != started["csrf_token"]
    async with fresh(http) as attacker:
        # Neither the planted value nor the password-step session leads anywhere now.
        for value in (planted, after_password):
            attacker.cookies.set(COOKIE, value, domain="testserver.local")
            assert (await attacker.get(f"{API}/me")).status_code == 401
        attacker.cookies.set(COOKIE, after_totp, domain="testserver.local")
        assert (await attacker.get(f"{API}/me")).status_code == 200


async def test_logout_ends_the_session_on_the_server(http: httpx.AsyncClient, world: World) -> None:
    token = (await sign_in(http, world["alice"], api=True)).json()["csrf_token"]
    cookie = http.cookies[COOKIE]
    assert (await http.delete(f"{API}/session", headers=csrf(token))).status_code == 204
    async with fresh(http) as replay:
        replay.cookies.set(COOKIE, cookie, domain="testserver.local")
        assert (await replay.get(f"{API}/me")).status_code == 401
    assert (await http.get(f"{API}/session/logout")).status_code in (404, 405)


async def test_idle_and_absolute_timeouts(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    for column, age in (("last_seen_at", timedelta(minutes=31)), ("expires_at", timedelta(0))):
        async with fresh(http) as browser:
            await sign_in(browser, world["alice"], api=True)
            assert (await browser.get(f"{API}/me")).status_code == 200
            async with transaction(services.sessions) as session:
                await session.execute(
                    update(BrowserSession)
                    .where(col(BrowserSession.user_id) == world["alice"].id)
                    .values({column: datetime.now(UTC) - age})
                )
            assert (await browser.get(f"{API}/me")).status_code == 401, column


async def test_sessions_are_listed_and_revocable(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    async with fresh(http) as laptop, fresh(http) as phone:
        await sign_in(laptop, alice, api=True)
        await sign_in(phone, alice, api=True)
        listed = (await http.get(f"{API}/me/sessions")).json()["sessions"]
        assert len(listed) == 3 and sum(s["current"] for s in listed) == 1
        laptop_id = next(
            s["id"]
            for s in listed
            if not s["current"] and s["last_seen_at"] == listed[1]["last_seen_at"]
        )
        assert (
            await http.delete(f"{API}/me/sessions/{laptop_id}", headers=csrf(token))
        ).status_code == 204
        still = [(await c.get(f"{API}/me")).status_code for c in (laptop, phone)]
        assert sorted(still) == [200, 401]
        everywhere = await http.delete(f"{API}/me/sessions", headers=csrf(token))
        assert everywhere.json()["ended"] == 1
        assert (await laptop.get(f"{API}/me")).status_code == 401
        assert (await phone.get(f"{API}/me")).status_code == 401
        assert (await http.get(f"{API}/me")).status_code == 200


# CSRF -----------------------------------------------------------------------------------------


async def test_cookie_requests_need_the_csrf_token(http: httpx.AsyncClient, world: World) -> None:
    token = (await sign_in(http, world["sam"], api=True)).json()["csrf_token"]
    _, _, token = await enrol(http, token)
    body = {"client_id": str(world.acme), "name": "Letters"}
    assert (await http.post(f"{API}/folders", json=body)).status_code == 403
    wrong = await http.post(f"{API}/folders", json=body, headers=csrf("x" * 43))
    assert wrong.status_code == 403
    foreign = await http.post(
        f"{API}/folders",
        json=body,
        headers={**csrf(token), "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    ok = await http.post(f"{API}/folders", json=body, headers=csrf(token))
    assert ok.status_code == 201, ok.text
    # Reading needs no token; a Bearer token needs none either.
    assert (await http.get(f"{API}/clients")).status_code == 200
    bearer = await http.post(
        f"{API}/folders",
        json={"client_id": str(world.acme), "name": "Receipts"},
        headers=world["sam"].auth,
    )
    assert bearer.status_code == 201


async def test_sign_in_from_another_site_is_refused(http: httpx.AsyncClient, world: World) -> None:
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await http.post(
            f"{API}/session",
            json={"email": world["alice"].email, "password": world["alice"].password},
            headers=headers,
        )
        assert response.status_code == 403


async def test_https_deployments_get_hsts_and_host_prefixed_cookies(
    settings: Any, world: World
) -> None:
    secure = settings.model_copy(
        update={
            "server": settings.server.model_copy(update={"public_url": "https://vault.example"})
        }
    )
    async with LifespanManager(create_app(secure)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://vault.example"
        ) as client:
            response = await client.post(
                f"{API}/session",
                json={"email": world["alice"].email, "password": world["alice"].password},
            )
            assert response.status_code == 200
            cookie = response.headers["set-cookie"]
            assert cookie.startswith("__Host-cv_session=")
            assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie
            assert response.headers["strict-transport-security"] == (
                "max-age=31536000; includeSubDomains"
            )
            assert (await client.get(f"{API}/me")).status_code == 200


async def test_session_ids_are_long_random_and_unrelated(
    http: httpx.AsyncClient, world: World
) -> None:
    """SFTPGo CVE-2024-52801: session ids that were unique but guessable."""
    seen = []
    for _ in range(5):
        async with fresh(http) as browser:
            await sign_in(browser, world["alice"], api=True)
            seen.append(browser.cookies[COOKIE])
    assert len(set(seen)) == 5
    assert all(len(value) >= 43 for value in seen)  # 256 bits in URL-safe base64
    # No shared prefix, as time-ordered ids would have.
    assert len({value[:4] for value in seen}) == 5
