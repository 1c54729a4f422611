"""Staff email a new link to its recipient from the link form: the recipient's mailbox (a
live SMTP server) gets the address once, the audit names the link and the recipient, and the
token is in no audit event and no log line."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.documents import put
from tests.fixtures.pages import csrf_of
from tests.fixtures.signin import sign_in
from tests.fixtures.smtp import SMTPSink
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services
from web.settings import Settings

BANK = "bank@example.test"


@pytest.fixture
def settings(settings: Settings, smtp_sink: SMTPSink) -> Settings:
    smtp = settings.smtp.model_copy(
        update={"host": smtp_sink.host, "port": smtp_sink.port, "starttls": False}
    )
    return settings.model_copy(update={"smtp": smtp})


async def sent_events(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "link.sent").order_by(col(AuditEvent.seq))
        )
        return list(found.scalars().all())


async def test_the_link_is_emailed_to_its_recipient_once_and_never_logged(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    smtp_sink: SMTPSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    document_id = await put(http, world, "sam", world.acme_folder, "terms.pdf", b"%PDF terms")
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{document_id}")
    assert 'name="send_to_recipient"' in page.text
    csrf = csrf_of(page.text)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    action = f"/documents/{document_id}/links"

    # Asked to email the link, with nobody to email it to: the form says which field.
    nobody = await http.post(
        action, data={"csrf_token": csrf, "expires": day, "send_to_recipient": "1"}
    )
    assert nobody.status_code == 422
    assert re.search(r'id="link-recipient"[^>]*\s+aria-invalid="true"', nobody.text)
    assert smtp_sink.messages == []

    made = await http.post(
        action,
        data={
            "csrf_token": csrf,
            "expires": day,
            "recipient_email": BANK,
            "send_to_recipient": "1",
        },
    )
    assert made.status_code == 200, made.text
    assert f"The link was emailed to {BANK}." in made.text
    found = re.search(r'<code id="new-link"[^>]*>([^<]+)</code>', made.text)
    assert found is not None
    url = found.group(1)
    token = url.rsplit("/", 1)[1]

    [(recipients, message)] = smtp_sink.messages
    assert recipients == [BANK]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert text.count(url) == 1
    assert "shared files with you" in str(message["Subject"])
    assert "a code sent to this address" in text

    [event] = await sent_events(services)
    assert event.outcome == "success" and event.target_type == "link"
    assert BANK in event.details
    async with transaction(services.sessions) as session:
        details = (await session.execute(select(AuditEvent.details))).scalars().all()
    assert details and not any(token in d for d in details)
    # The receiving server's own debug log ("mail.log", aiosmtpd) is the recipient's side.
    ours = [r for r in caplog.records if r.name != "mail.log"]
    assert ours and not any(token in r.getMessage() for r in ours)

    # Without the box ticked, nothing is sent.
    await http.post(action, data={"csrf_token": csrf, "expires": day, "recipient_email": BANK})
    assert len(smtp_sink.messages) == 1


async def test_a_refused_email_says_so_and_is_audited_as_a_failure(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    smtp_sink.reject.add(BANK)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    made = await http.post(
        f"/folders/{world.acme_folder}/links",
        data={
            "csrf_token": csrf_of(page.text),
            "kind": "upload",
            "expires": day,
            "recipient_email": BANK,
            "send_to_recipient": "1",
        },
    )
    assert made.status_code == 200, made.text
    assert "could not be emailed" in made.text
    assert 'id="new-link"' in made.text  # still shown, to copy and send by hand
    [event] = await sent_events(services)
    assert event.outcome == "failure"
