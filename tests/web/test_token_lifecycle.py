"""Personal access tokens end with the credentials they stand for (issue 13 item 4): revoked
on a password change or reset, "sign out everywhere", a second-factor reset and when the
account is disabled; made only with the password (and a code where TOTP is on); at most
`auth.token_max_days` old; and their last use, when and from where, shown to their owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from tests.fixtures.app import Person, World
from tests.fixtures.session_api import API, actions, csrf, enrol, fresh, link_in, outbox_messages
from tests.fixtures.signin import sign_in
from tests.fixtures.statements import statements_sent
from vault.db import transaction
from vault.models import AccessToken
from web.services import Services
from web.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The firm lets client users hold personal access tokens (`[auth] client_tokens`): these
    tests are about tokens, made by a client user."""
    return settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"client_tokens": True})}
    )


async def new_token(http: httpx.AsyncClient, person: Person, token: str, **extra: object) -> str:
    made = await http.post(
        f"{API}/me/tokens",
        json={"name": "script", "password": person.password, **extra},
        headers=csrf(token),
    )
    assert made.status_code == 201, made.text
    secret: str = made.json()["token"]
    return secret


async def works(http: httpx.AsyncClient, secret: str) -> bool:
    async with fresh(http) as script:
        answer = await script.get(f"{API}/me", headers={"Authorization": f"Bearer {secret}"})
    return answer.status_code == 200


Event = Callable[[httpx.AsyncClient, World, Services, str], Awaitable[None]]


async def password_changed(http: httpx.AsyncClient, world: World, _: Services, token: str) -> None:
    changed = await http.post(
        f"{API}/me/password",
        json={"current_password": world["alice"].password, "new_password": "quite a new one now"},
        headers=csrf(token),
    )
    assert changed.status_code == 204, changed.text


async def password_reset(http: httpx.AsyncClient, world: World, svc: Services, _: str) -> None:
    await http.post(f"{API}/password-reset", json={"email": world["alice"].email})
    secret = link_in(outbox_messages(svc)[-1], "/reset")
    done = await http.post(
        f"{API}/password-reset/confirm", json={"token": secret, "password": "reset to a new one"}
    )
    assert done.status_code == 200, done.text


async def signed_out_everywhere(
    http: httpx.AsyncClient, _world: World, _svc: Services, token: str
) -> None:
    ended = await http.delete(f"{API}/me/sessions", headers=csrf(token))
    assert ended.status_code == 200 and ended.json()["tokens_revoked"] >= 1, ended.text


async def totp_reset_by_admin(
    http: httpx.AsyncClient, world: World, _svc: Services, _token: str
) -> None:
    reset = await http.delete(f"{API}/users/{world['alice'].id}/totp", headers=world["ada"].auth)
    assert reset.status_code == 204


async def account_disabled(
    http: httpx.AsyncClient, world: World, _svc: Services, _token: str
) -> None:
    off = await http.patch(
        f"{API}/users/{world['alice'].id}", json={"active": False}, headers=world["ada"].auth
    )
    assert off.status_code == 200
    on = await http.patch(
        f"{API}/users/{world['alice'].id}", json={"active": True}, headers=world["ada"].auth
    )
    assert on.status_code == 200


@pytest.mark.parametrize(
    "event",
    [
        password_changed,
        password_reset,
        signed_out_everywhere,
        totp_reset_by_admin,
        account_disabled,
    ],
)
async def test_credential_events_revoke_every_token(
    http: httpx.AsyncClient, world: World, services: Services, event: Event
) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    made = await new_token(http, alice, token)
    assert await works(http, made) and await works(http, alice.token)
    await event(http, world, services, token)
    # Both the new token and the one made long before are dead, even once the account is
    # back on: a token does not outlive the credentials it was made with.
    assert not await works(http, made)
    assert not await works(http, alice.token)
    # Someone else's tokens are untouched.
    assert await works(http, world["bob"].token)


async def test_token_creation_needs_the_password_and_the_second_factor(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    for body in ({"name": "x"}, {"name": "x", "password": "not her password"}):
        refused = await http.post(f"{API}/me/tokens", json=body, headers=csrf(token))
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "password"
    _, codes, token = await enrol(http, token, password=alice.password)
    # With TOTP on, the password alone is not enough, nor a wrong code.
    for code in ({}, {"code": "000000"}):
        refused = await http.post(
            f"{API}/me/tokens",
            json={"name": "x", "password": alice.password, **code},
            headers=csrf(token),
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "code"
    listed = (await http.get(f"{API}/me/tokens")).json()["tokens"]
    assert [t["name"] for t in listed] == ["test"], "only the fixture's token exists"
    await new_token(http, alice, token, code=codes[0])
    assert ("auth.reauthenticate", "failure") in await actions(services)


async def test_tokens_live_at_most_the_configured_days(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    longest = services.settings.auth.token_max_days
    assert longest == 90  # the default (config.example.toml)
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    for days in (longest + 1, None, 0):
        refused = await http.post(
            f"{API}/me/tokens",
            json={"password": alice.password, "expires_in_days": days},
            headers=csrf(token),
        )
        assert refused.status_code == 422, (days, refused.text)
    made = await http.post(
        f"{API}/me/tokens", json={"password": alice.password}, headers=csrf(token)
    )
    expires = datetime.fromisoformat(made.json()["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=longest))) < timedelta(minutes=1)
    # A token without an expiry (made by the CLI, or before the limit) dies at the limit too.
    assert await works(http, alice.token)
    async with transaction(services.sessions) as session:
        await session.execute(
            update(AccessToken)
            .where(col(AccessToken.user_id) == alice.id, col(AccessToken.expires_at).is_(None))
            .values(created_at=datetime.now(UTC) - timedelta(days=longest, seconds=1))
        )
    assert not await works(http, alice.token)


async def test_token_listing_shows_when_and_where_it_was_last_used(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    secret = await new_token(http, alice, token)
    listed = (await http.get(f"{API}/me/tokens")).json()["tokens"]
    fresh_one = next(t for t in listed if t["name"] == "script")
    assert fresh_one["last_used_at"] is None and fresh_one["last_used_ip"] is None
    assert await works(http, secret)
    listed = (await http.get(f"{API}/me/tokens")).json()["tokens"]
    used = next(t for t in listed if t["name"] == "script")
    assert used["last_used_at"] is not None
    assert used["last_used_ip"] == "127.0.0.1"  # httpx's ASGI transport's client address


async def test_the_account_page_asks_for_a_code_where_totp_is_on(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    assert 'name="code"' not in (await http.get("/account")).text.split('id="tokens"')[1]
    _, codes, token = await enrol(http, token, password=alice.password)
    tokens_section = (await http.get("/account")).text.split('id="tokens"')[1]
    assert 'name="password"' in tokens_section and 'name="code"' in tokens_section
    form = {"csrf_token": token, "name": "by page", "scope": "read", "days": "7"}
    refused = await http.post(
        "/account/tokens", data={**form, "password": alice.password, "code": "000000"}
    )
    assert refused.status_code == 422
    assert "That code did not match, so no token was made." in refused.text
    made = await http.post(
        "/account/tokens", data={**form, "password": alice.password, "code": codes[1]}
    )
    assert made.status_code == 201, made.text


async def test_a_token_request_reads_its_token_user_and_clients_in_two_statements(
    http: httpx.AsyncClient, world: World
) -> None:
    """Every API request authenticates, so each round trip it saves is saved on all of them."""
    auth = world["alice"].auth
    assert (await http.get(f"{API}/me", headers=auth)).status_code == 200
    with statements_sent() as sent:
        assert (await http.get(f"{API}/me", headers=auth)).status_code == 200
    statements = [s.lower() for s in sent]
    reads = [s for s in statements if s.startswith("select") and "from audit_head" not in s]
    assert len(reads) == 2, reads
    assert "from access_tokens join users" in " ".join(reads[0].split())
    assert "from client_access" in reads[1] and "from clients" in reads[1]
