"""Who may hear about a client at all: never an address whose invitation was not accepted
(review item 2), and every client user for the firm's shared resources."""

from __future__ import annotations

import uuid
from datetime import timedelta

from argon2 import PasswordHasher

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.notify import WINDOW, later, tick, upload
from tests.fixtures.smtp import SMTPSink
from vault import audit, resources
from vault import folders as folder_service
from vault.accounts import invitations
from vault.accounts.passwords import hash_password
from vault.db import transaction
from vault.models import Role
from vault.policy import SYSTEM
from web.services import Services

TYPO = "alcie@example.test"  # a mistyped address: it must learn nothing about Acme


async def invite(services: Services, world: World, *, valid_for: timedelta) -> str:
    async with transaction(services.sessions) as session:
        invited = await invitations.invite(
            session,
            SYSTEM,
            TEST_CONTEXT,
            email=TYPO,
            role=Role.CLIENT,
            client_ids=[world.acme],
            valid_for=valid_for,
        )
    return invited.secret


async def deliver(services: Services, sink: SMTPSink) -> None:
    await tick(services, sink)
    await tick(services, sink, later(WINDOW + 1))


async def test_a_pending_invitee_hears_nothing_until_they_accept(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    secret = await invite(services, world, valid_for=timedelta(days=3))
    await upload(services, world, actor="sam", name="Salaries 2026.xlsx")
    await upload(services, world, actor="sam", action="request.reminder", name="Bank statements")
    await deliver(services, smtp_sink)
    assert smtp_sink.to(world["alice"].email), "the real member is told"
    assert smtp_sink.to(TYPO) == []
    password = "a long and careful passphrase"
    password_hash = hash_password(password, PasswordHasher(time_cost=1, memory_cost=8192))
    async with transaction(services.sessions) as session:
        accepted = await invitations.accept(
            session, TEST_CONTEXT, secret=secret, password=password, password_hash=password_hash
        )
    assert accepted is not None
    await upload(services, world, actor="sam", name="Dividends.pdf")
    await tick(services, smtp_sink, later(3 * WINDOW))
    await tick(services, smtp_sink, later(5 * WINDOW))
    [message] = smtp_sink.to(TYPO)
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    # Only what happened after accepting: the earlier items were never queued for them.
    assert "Dividends.pdf" in body and "Salaries 2026.xlsx" not in body


async def test_an_invitation_left_to_expire_never_starts_mail(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await invite(services, world, valid_for=timedelta(seconds=-1))
    await upload(services, world, actor="sam", name="Salaries 2026.xlsx")
    await upload(services, world, actor="sam", action="request.reminder", name="Bank statements")
    await deliver(services, smtp_sink)
    assert smtp_sink.to(world["alice"].email)
    assert smtp_sink.to(TYPO) == []


async def test_changes_to_shared_resources_reach_every_client_user(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    async with transaction(services.sessions) as session:
        firm = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Firm guides")
        await resources.set_shared(session, SYSTEM, TEST_CONTEXT, firm.id, shared=True)
        folder = await folder_service.create_folder(
            session, SYSTEM, TEST_CONTEXT, client_id=firm.id, parent_id=None, name="Forms"
        )
        ada = world["ada"]
        document_id = uuid.uuid4()
        await audit.append(
            session,
            audit.AuditContext(actor_id=str(ada.id), actor_role=ada.role.value),
            "document.created",
            client_id=firm.id,
            target_type="document",
            target_id=document_id,
            document_id=document_id,
            details={"name": "Tax checklist.pdf", "folder_id": str(folder.id), "version": 1},
        )
    await deliver(services, smtp_sink)
    for name in ("alice", "bob", "sam", "gina"):
        assert len(smtp_sink.to(world[name].email)) == 1, name
    assert smtp_sink.to(world["otto"].email) == []  # auditors see no client's files
