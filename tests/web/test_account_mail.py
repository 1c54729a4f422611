"""Account emails (invitation, password reset, …): what they list, the language they are
written in, and how the right-to-left ones look in a real browser."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import httpx
import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from vault import accounts, profiles

from vault.db import transaction
from vault.models import Role
from web.services import Services

API = "/api/v1"



def outbox(services: Services, to: str) -> list[EmailMessage]:
    folder = services.settings.outbox_path
    paths = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    found = [
        email.message_from_bytes(p.read_bytes(), _class=EmailMessage, policy=email.policy.default)
        for p in paths
    ]
    return [m for m in found if m["To"] == to]


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
async def test_an_api_invitation_to_the_firm_lists_no_clients(
    http: httpx.AsyncClient, services: Services, world: World, role: Role
) -> None:
    # The vault gives auditors and admins no clients, whatever the request asked for.
    address = f"new-{role.value}@example.test"
    made = await http.post(
        f"{API}/invitations",
        json={"email": address, "role": role.value, "client_ids": [str(world.acme)]},
        headers=world["ada"].auth,
    )
    assert made.status_code == 201, made.text
    [message] = outbox(services, address)
    text, html = parts(message)
    assert "Acme" not in text and "Acme" not in html


async def test_a_staff_invitation_lists_the_clients_granted(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    made = await http.post(
        f"{API}/invitations",
        json={"email": "new-staff@example.test", "role": "staff", "client_ids": [str(world.acme)]},
        headers=world["ada"].auth,
    )
    assert made.status_code == 201, made.text
    [message] = outbox(services, "new-staff@example.test")
    text, html = parts(message)
    assert "Acme" in text and "Acme" in html


@pytest.mark.parametrize("name", ["Eve\u202egnp.exe", "Eve\u2067x\u2069", "A\u0007B"])
async def test_a_new_account_refuses_a_display_name_with_direction_or_control_characters(
    services: Services, name: str
) -> None:
    async with transaction(services.sessions) as session:
        with pytest.raises(profiles.ProfileError):
            await accounts.create_user(
                session, TEST_CONTEXT, email="spoof@example.test", role=Role.STAFF, display_name=name
            )


@pytest.mark.parametrize("name", ["Eve\u202egnp.exe", "Eve\u2067x\u2069"])
async def test_an_api_invitation_refuses_a_display_name_with_direction_characters(
    http: httpx.AsyncClient, services: Services, world: World, name: str
) -> None:
    made = await http.post(
        f"{API}/invitations",
        json={"email": "spoof@example.test", "client_ids": [str(world.acme)], "display_name": name},
        headers=world["sam"].auth,
    )
    assert made.status_code == 422, made.text
    assert outbox(services, "spoof@example.test") == []
