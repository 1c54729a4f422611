"""Staff of one client learn nothing about other clients' accounts or names, and never take
over an invitation made for another client (review item 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from starlette.types import ASGIApp

from tests.fixtures.app import Person, World
from tests.fixtures.pages import account_csrf
from tests.fixtures.session_api import link_in, outbox_messages
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import AuditEvent, Client, ClientAccess, User
from web.services import Services

API = "/api/v1"
PENDING = "pending-beta@example.test"


async def invite(http: httpx.AsyncClient, by: Person, email: str, client: object) -> httpx.Response:
    return await http.post(
        f"{API}/invitations",
        json={"email": email, "client_ids": [str(client)]},
        headers=by.auth,
    )


def shape(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    """The answer with the address itself taken out: what must not differ."""
    body = dict(response.json())
    body.pop("email")
    return response.status_code, body


async def clients_of(services: Services, email: str) -> set[str]:
    async with transaction(services.sessions) as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
        rows = await session.execute(
            select(ClientAccess.client_id).where(ClientAccess.user_id == user.id)
        )
        return {str(c) for c in rows.scalars().all()}


def mail_to(services: Services, email: str) -> list[str]:
    return [link_in(m, "/invite") for m in outbox_messages(services) if m["To"] == email]


async def test_staff_cannot_take_over_another_clients_pending_invitation(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    # The admin invites pending-beta@ to Beta (Globex here).
    made = await invite(http, world["ada"], PENDING, world.globex)
    assert made.status_code == 201, made.text
    [admin_link] = mail_to(services, PENDING)
    # Acme's staff invite the same address, then a brand-new one.
    sam = world["sam"]
    taken = await invite(http, sam, PENDING, world.acme)
    fresh = await invite(http, sam, "brand-new@example.test", world.acme)
    assert taken.status_code == 201, taken.text
    assert shape(taken) == shape(fresh) == (201, {"role": "client", "email_sent": True})
    # No Acme access, no second link, and the admin's link still works.
    assert await clients_of(services, PENDING) == {str(world.globex)}
    assert mail_to(services, PENDING) == [admin_link]
    accepted = await http.post(
        f"{API}/invitations/accept",
        json={"token": admin_link, "password": "beta picks a long phrase"},
    )
    assert accepted.status_code == 200, accepted.text
    # The attempt is on the record for the auditors.
    async with transaction(services.sessions) as session:
        denied = (
            (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.action == "user.invited", AuditEvent.outcome == "denied"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(denied) == 1 and denied[0].actor_id == str(sam.id)


@pytest.mark.parametrize("existing", ["bob", "gina", "ada", "otto"])
async def test_staff_get_the_same_answer_for_any_existing_account(
    http: httpx.AsyncClient, services: Services, world: World, existing: str
) -> None:
    sam = world["sam"]
    email = world[existing].email
    before = await clients_of(services, email)
    taken = await invite(http, sam, email, world.acme)
    fresh = await invite(http, sam, f"new-{existing}@example.test", world.acme)
    assert shape(taken) == shape(fresh)
    assert await clients_of(services, email) == before
    assert mail_to(services, email) == []


async def test_admins_are_still_told_an_address_is_taken(
    http: httpx.AsyncClient, world: World
) -> None:
    taken = await invite(http, world["ada"], world["bob"].email, world.acme)
    assert taken.status_code == 409
    fresh = await invite(http, world["ada"], "carol@example.test", world.acme)
    assert fresh.status_code == 201 and "user_id" in fresh.json()


async def test_staff_still_re_invite_their_own_pending_invitee(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    sam = world["sam"]
    assert (await invite(http, sam, "carol@example.test", world.acme)).status_code == 201
    assert (await invite(http, sam, "carol@example.test", world.acme)).status_code == 201
    first, second = mail_to(services, "carol@example.test")
    assert first != second  # a fresh link; the old one stops working


@pytest.fixture
async def browser(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_the_invitation_page_answers_alike(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await invite(http, world["ada"], PENDING, world.globex)
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    answers = []
    for email in (PENDING, world["bob"].email, "brand-new@example.test"):
        sent = await http.post(
            "/account/invite",
            data={
                "csrf_token": token,
                "email": email,
                "display_name": "",
                "role": "client",
                "client_id": str(world.acme),
            },
        )
        answers.append((sent.status_code, sent.headers.get("location")))
    assert answers == [(303, "/account?done=invited#invite")] * 3
    assert await clients_of(services, PENDING) == {str(world.globex)}


async def test_staff_learn_no_other_clients_name(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    sam, ada = world["sam"].auth, world["ada"].auth
    hidden = await http.post(f"{API}/clients", json={"name": "Globex"}, headers=sam)
    fresh = await http.post(f"{API}/clients", json={"name": "Initech"}, headers=sam)
    assert hidden.status_code == fresh.status_code == 201, hidden.text
    assert set(hidden.json()) == set(fresh.json())
    # A name the caller can see is still refused: two "Acme" for sam would be a trap.
    assert (
        await http.post(f"{API}/clients", json={"name": "acme"}, headers=sam)
    ).status_code == 409
    assert (
        await http.post(f"{API}/clients", json={"name": "Globex"}, headers=sam)
    ).status_code == 409
    assert (
        await http.post(f"{API}/clients", json={"name": "Initech"}, headers=ada)
    ).status_code == 409
    # Gina's Globex is untouched; the admin sees both, each with its own id.
    gina = (await http.get(f"{API}/clients", headers=world["gina"].auth)).json()["clients"]
    assert [c["id"] for c in gina if c["name"] == "Globex"] == [str(world.globex)]
    async with transaction(services.sessions) as session:
        named = (
            (await session.execute(select(Client).where(col(Client.name) == "Globex")))
            .scalars()
            .all()
        )
    assert len(named) == 2
