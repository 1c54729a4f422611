"""Accounts around signing in, through the JSON API: password change and reset, invitations,
personal access tokens, admin resets, the audit of each authentication event, lockouts.

Every test runs on SQLite and PostgreSQL (the `database_url` fixture behind `http`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.client_tokens import settings as settings
from tests.fixtures.session_api import (
    API,
    actions,
    csrf,
    enrol,
    fresh,
    link_in,
    outbox_messages,
    plain_text,
)
from tests.fixtures.signin import sign_in
from vault.accounts.identity import EmailLink
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services

# Helpers ------------------------------------------------------------------------------------


# Password change and reset -------------------------------------------------------------------


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    async with fresh(http) as other:
        await sign_in(other, alice, api=True)
        new = "a brand new passphrase"
        bad = await http.post(
            f"{API}/me/password",
            json={"current_password": "wrong wrong wrong", "new_password": new},
            headers=csrf(token),
        )
        assert bad.status_code == 422 and bad.json()["field"] == "current_password"
        weak = await http.post(
            f"{API}/me/password",
            json={"current_password": alice.password, "new_password": "password1234"},
            headers=csrf(token),
        )
        assert weak.status_code == 422 and weak.json()["field"] == "new_password"
        ok = await http.post(
            f"{API}/me/password",
            json={"current_password": alice.password, "new_password": new},
            headers=csrf(token),
        )
        assert ok.status_code == 204
        assert (await other.get(f"{API}/me")).status_code == 401
        assert (await http.get(f"{API}/me")).status_code == 200
    async with fresh(http) as again:
        await sign_in(again, alice, new, api=True)


async def test_reset_link_is_single_use_and_expires(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    async with fresh(http) as before:
        await sign_in(before, alice, api=True)
        sent = await http.post(f"{API}/password-reset", json={"email": alice.email})
        unknown = await http.post(f"{API}/password-reset", json={"email": "nobody@example.test"})
        assert sent.status_code == unknown.status_code == 202
        assert sent.content == unknown.content
        messages = outbox_messages(services)
        assert [m["To"] for m in messages] == [alice.email]
        secret = link_in(messages[0], "/reset")
        assert services.settings.server.public_url in plain_text(messages[0])

        weak = await http.post(
            f"{API}/password-reset/confirm", json={"token": secret, "password": "short"}
        )
        assert weak.status_code == 422
        new = "reset to something long"
        ok = await http.post(
            f"{API}/password-reset/confirm", json={"token": secret, "password": new}
        )
        assert ok.status_code == 200, ok.text
        again = await http.post(
            f"{API}/password-reset/confirm", json={"token": secret, "password": new + "!"}
        )
        assert again.status_code == 400
        # Sessions from before the reset are over.
        assert (await before.get(f"{API}/me")).status_code == 401
    await sign_in(http, alice, new, api=True)

    await http.post(f"{API}/password-reset", json={"email": alice.email})
    late = link_in(outbox_messages(services)[-1], "/reset")
    async with transaction(services.sessions) as session:
        await session.execute(
            update(EmailLink).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await http.post(
        f"{API}/password-reset/confirm", json={"token": late, "password": "too late for this"}
    )
    assert expired.status_code == 400


async def test_reset_link_uses_the_configured_address_not_the_host_header(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await http.post(
        f"{API}/password-reset",
        json={"email": world["alice"].email},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    text = plain_text(outbox_messages(services)[-1])
    assert "evil.example" not in text
    assert services.settings.server.public_url + "/reset/" in text


async def test_reset_does_not_skip_the_second_factor(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam = world["sam"]
    await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    await http.post(f"{API}/password-reset", json={"email": sam.email})
    secret = link_in(outbox_messages(services)[-1], "/reset")
    new = "sam resets his passphrase"
    await http.post(f"{API}/password-reset/confirm", json={"token": secret, "password": new})
    async with fresh(http) as browser:
        assert (await sign_in(browser, sam, new, api=True)).json()["mfa_required"] is True


async def test_disabled_account_gets_no_reset_and_cannot_sign_in(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    """SFTPGo CVE-2024-37897: a disabled account could reset its password and sign in."""
    ada, alice = world["ada"], world["alice"]
    off = await http.patch(f"{API}/users/{alice.id}", json={"active": False}, headers=ada.auth)
    assert off.status_code == 200
    await http.post(f"{API}/password-reset", json={"email": alice.email})
    assert outbox_messages(services) == []
    response = await http.post(
        f"{API}/session", json={"email": alice.email, "password": alice.password}
    )
    assert response.status_code == 401


# Invitations ----------------------------------------------------------------------------------


async def test_invitation_by_email_to_password_to_sign_in(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam = world["sam"]
    invited = await http.post(
        f"{API}/invitations",
        json={"email": "carol@example.test", "client_ids": [str(world.acme)]},
        headers=sam.auth,
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["email_sent"] is True
    message = outbox_messages(services)[-1]
    assert message["To"] == "carol@example.test"
    secret = link_in(message, "/invite")
    # Not yet a usable account.
    no = await http.post(
        f"{API}/session", json={"email": "carol@example.test", "password": "x" * 12}
    )
    assert no.status_code == 401
    weak = await http.post(
        f"{API}/invitations/accept", json={"token": secret, "password": "carol@example.test!"}
    )
    assert weak.status_code == 422
    ok = await http.post(
        f"{API}/invitations/accept", json={"token": secret, "password": "carol picks a phrase"}
    )
    assert ok.status_code == 200, ok.text
    again = await http.post(
        f"{API}/invitations/accept", json={"token": secret, "password": "carol picks another"}
    )
    assert again.status_code == 400
    response = await http.post(
        f"{API}/session", json={"email": "carol@example.test", "password": "carol picks a phrase"}
    )
    assert response.status_code == 200
    clients = (await http.get(f"{API}/clients")).json()["clients"]
    assert [c["id"] for c in clients] == [str(world.acme)]


@pytest.mark.parametrize(
    ("inviter", "role", "client"),
    [
        ("sam", "client", "globex"),  # staff, another firm's client: hidden
        ("alice", "client", "acme"),  # clients do not invite
        ("sam", "staff", "acme"),  # staff do not add staff
        ("otto", "client", "acme"),  # nor do auditors
    ],
)
async def test_who_may_invite_whom(
    http: httpx.AsyncClient, world: World, inviter: str, role: str, client: str
) -> None:
    response = await http.post(
        f"{API}/invitations",
        json={
            "email": "mallory@example.test",
            "role": role,
            "client_ids": [str(getattr(world, client))],
        },
        headers=world[inviter].auth,
    )
    assert response.status_code in (403, 404)


# Tokens ----------------------------------------------------------------------------------------


async def test_tokens_managed_from_a_browser_session(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"]
    token = (await sign_in(http, alice, api=True)).json()["csrf_token"]
    made = await http.post(
        f"{API}/me/tokens",
        json={
            "name": "backup script",
            "scope": "read",
            "expires_in_days": 30,
            "password": alice.password,
        },
        headers=csrf(token),
    )
    assert made.status_code == 201
    secret, token_id = made.json()["token"], made.json()["id"]
    listed = (await http.get(f"{API}/me/tokens")).json()["tokens"]
    assert any(t["id"] == token_id and t["scope"] == "read" for t in listed)
    assert all("token" not in t for t in listed)
    async with fresh(http) as script:
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await script.get(f"{API}/me", headers=bearer)).status_code == 200
        # A token cannot mint tokens, whatever its scope.
        minted = await script.post(f"{API}/me/tokens", json={"name": "x"}, headers=alice.auth)
        assert minted.status_code == 403
        assert (
            await http.delete(f"{API}/me/tokens/{token_id}", headers=csrf(token))
        ).status_code == 204
        assert (await script.get(f"{API}/me", headers=bearer)).status_code == 401


# Admin ------------------------------------------------------------------------------------------


async def test_admin_resets_totp_and_role_change_ends_sessions(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam, ada = world["sam"], world["ada"]
    await enrol(http, (await sign_in(http, sam, api=True)).json()["csrf_token"])
    assert (await http.get(f"{API}/me")).status_code == 200
    reset = await http.delete(f"{API}/users/{sam.id}/totp", headers=ada.auth)
    assert reset.status_code == 204
    assert (await http.get(f"{API}/me")).status_code == 401
    again = (await sign_in(http, sam, api=True)).json()
    assert again["mfa_enrolment_required"] is True
    assert ("mfa.reset", "success") in await actions(services)

    alice_browser = fresh(http)
    async with alice_browser:
        await sign_in(alice_browser, world["alice"], api=True)
        changed = await http.patch(
            f"{API}/users/{world['alice'].id}", json={"role": "staff"}, headers=ada.auth
        )
        assert changed.status_code == 200
        assert (await alice_browser.get(f"{API}/me")).status_code == 401


# Audit ------------------------------------------------------------------------------------------


async def test_every_authentication_event_is_audited(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam, alice = world["sam"], world["alice"]
    await http.post(f"{API}/session", json={"email": alice.email, "password": "wrong password!"})
    token = (await sign_in(http, sam, api=True)).json()["csrf_token"]
    totp, codes, token = await enrol(http, token)
    made = await http.post(
        f"{API}/me/tokens",
        json={"name": "t", "password": sam.password, "code": codes[0]},
        headers=csrf(token),
    )
    await http.delete(f"{API}/me/tokens/{made.json()['id']}", headers=csrf(token))
    async with fresh(http) as other:
        started = (await sign_in(other, sam, api=True)).json()
        await other.post(
            f"{API}/session/totp", json={"code": "000000"}, headers=csrf(started["csrf_token"])
        )
        await other.post(
            f"{API}/session/totp",
            json={"code": totp.at(time.time() + 30)},
            headers=csrf(started["csrf_token"]),
        )
        listed = (await http.get(f"{API}/me/sessions")).json()["sessions"]
        handle = next(s["id"] for s in listed if not s["current"])
        await http.delete(f"{API}/me/sessions/{handle}", headers=csrf(token))
    await http.delete(f"{API}/session", headers=csrf(token))
    seen = set(await actions(services))
    for expected in [
        ("auth.login", "failure"),
        ("auth.login", "success"),
        ("mfa.enrolled", "success"),
        ("auth.mfa", "failure"),
        ("auth.mfa", "success"),
        ("token.created", "success"),
        ("token.revoked", "success"),
        ("session.revoked", "success"),
        ("auth.logout", "success"),
    ]:
        assert expected in seen, expected
    # No secret ends up in the log.
    async with transaction(services.sessions) as session:
        details = " ".join((await session.execute(select(AuditEvent.details))).scalars().all())
    assert sam.password not in details and "wrong password!" not in details


async def test_lockout_at_threshold_notifies_the_owner(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"]
    limit = services.settings.auth.max_failures
    statuses = []
    for _ in range(limit + 1):
        response = await http.post(
            f"{API}/session", json={"email": alice.email, "password": "guess guess guess"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * limit + [429]
    locked = await http.post(
        f"{API}/session", json={"email": alice.email, "password": alice.password}
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    mails = [m for m in outbox_messages(services) if m["To"] == alice.email]
    assert len(mails) == 1 and "paused" in mails[0]["Subject"]
    assert ("auth.lockout", "success") in await actions(services)
    # An unknown address locks after the same number of tries: no oracle either way.
    ghost = []
    for _ in range(limit + 1):
        response = await http.post(
            f"{API}/session", json={"email": "ghost@example.test", "password": "guess guess guess"}
        )
        ghost.append(response.status_code)
    assert ghost == statuses


async def test_an_address_lock_is_audited_with_the_address(
    http: httpx.AsyncClient, services: Services
) -> None:
    """The per-address lock stops everyone behind one address (issue 13 item 13): like an
    account's lock, it is an `auth.lockout` event naming the address of the attempts."""
    limit = services.settings.auth.address_max_failures
    for n in range(limit):
        refused = await http.post(
            f"{API}/session", json={"email": f"ghost{n}@example.test", "password": "guess guess"}
        )
        assert refused.status_code == 401
    locked = await http.post(
        f"{API}/session", json={"email": "another@example.test", "password": "guess guess"}
    )
    assert locked.status_code == 429
    async with transaction(services.sessions) as session:
        rows = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "auth.lockout"))
        ).scalars()
        locks = [(e.ip, json.loads(e.details).get("scope")) for e in rows]
    assert locks == [("127.0.0.1", "address")]
