"""The edges of signing in: what a half-signed-in session may reach, and brute-force limits
held across several app processes sharing one database."""

from __future__ import annotations

import asyncio
from typing import Literal

import httpx
import pytest

from tests.fixtures.app import World
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.routes import concrete, route_inventory
from tests.fixtures.session_api import enrol
from tests.fixtures.signin import sign_in

API = "/api/v1"

# Routes anyone may call: the ways in.
PUBLIC = {
    ("GET", "/openapi.json"),
    ("POST", "/session"),
    ("POST", "/password-reset"),
    ("POST", "/password-reset/confirm"),
    ("POST", "/invitations/accept"),
    ("OPTIONS", "/uploads"),  # tus discovery: versions, extensions and limits only
}
# What a session may do while the second factor is pending ...
SECOND_FACTOR = {("GET", "/session"), ("DELETE", "/session"), ("POST", "/session/totp")}
# ... and while it must enrol TOTP first.
ENROL = {
    ("GET", "/session"),
    ("DELETE", "/session"),
    ("GET", "/me/totp"),
    ("POST", "/me/totp"),
    ("POST", "/me/totp/confirm"),
}


async def probe_all(
    http: httpx.AsyncClient, csrf_token: str, allowed: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Status of every API route outside `allowed`, called with the session's CSRF token
    (so that the CSRF check is not what refuses)."""
    statuses = {}
    for method, path in sorted(route_inventory() - allowed - PUBLIC):
        response = await http.request(
            method,
            API + concrete(path),
            headers={"X-CSRF-Token": csrf_token, "Tus-Resumable": "1.0.0"},
            content=b"{}" if method in ("POST", "PUT", "PATCH") else None,
        )
        statuses[(method, path)] = response.status_code
    return statuses


async def test_a_session_waiting_for_its_second_factor_reaches_nothing(
    http: httpx.AsyncClient, world: World
) -> None:
    sam = world["sam"]
    _, _, token = await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    assert (await http.delete(f"{API}/session", headers={"X-CSRF-Token": token})).status_code == 204
    started = (await sign_in(http, sam, api=True)).json()
    assert started["mfa_required"] is True
    statuses = await probe_all(http, started["csrf_token"], SECOND_FACTOR)
    assert statuses and all(s == 401 for s in statuses.values()), {
        k: v for k, v in statuses.items() if v != 401
    }


async def test_a_session_that_must_enrol_reaches_nothing_else(
    http: httpx.AsyncClient, world: World
) -> None:
    started = (await sign_in(http, world["otto"], api=True)).json()
    assert started["mfa_enrolment_required"] is True
    statuses = await probe_all(http, started["csrf_token"], ENROL)
    assert statuses and all(s == 401 for s in statuses.values()), {
        k: v for k, v in statuses.items() if v != 401
    }


async def test_anonymous_callers_reach_only_the_ways_in(http: httpx.AsyncClient) -> None:
    statuses = await probe_all(http, "", set())
    assert all(s == 401 for s in statuses.values()), {k: v for k, v in statuses.items() if v != 401}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_rate_limit_trips_at_the_threshold_across_two_processes(
    live_app: LiveAppFactory, database: Literal["sqlite", "postgresql"]
) -> None:
    limit = 4
    config = {"auth": {"max_failures": limit, "lockout_minutes": 5}}
    first = await live_app(database=database, config=config)
    shared: dict[str, object] = {"data_dir": str(first.data_dir), **config}
    if database == "postgresql":
        shared["database"] = {"url": first.settings.database.url}
    second = await live_app(config=shared)
    await first.cli(
        "user",
        "add",
        "erin@example.test",
        "--role",
        "client",
        "--password-stdin",
        stdin=b"erin has a long passphrase\n",
    )

    async def attempt(app_http: httpx.AsyncClient, password: str) -> int:
        response = await app_http.post(
            f"{API}/session", json={"email": "erin@example.test", "password": password}
        )
        return response.status_code

    async with first.http() as a, second.http() as b:
        # The failures arrive at both processes at once.
        wrong = await asyncio.gather(
            *(attempt(a if i % 2 else b, f"wrong guess number {i}") for i in range(limit))
        )
        assert wrong == [401] * limit
        assert await attempt(a, "one guess too many") == 429
        assert await attempt(b, "one guess too many") == 429
        # Locked means locked, even with the right password, on either process.
        assert await attempt(b, "erin has a long passphrase") == 429
