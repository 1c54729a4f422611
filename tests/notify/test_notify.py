"""The notifier against a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from notify import (
    NotifyConfig,
    OutboxDirMailer,
    SMTPMailer,
    build_message,
    outbox,
    render,
    run,
    run_once,
)
from notify.feed import set_cadence
from notify.render import Item
from tests.fixtures.app import World
from tests.fixtures.smtp import SMTPSink
from vault import audit
from vault.db import transaction
from vault.models import AuditEvent
from vault.notifications import Cadence, DeliveryState, Notification
from web.services import Services

PUBLIC = "https://vault.example.test"
WINDOW = 60.0


def config(**overrides: float) -> NotifyConfig:
    return NotifyConfig(
        public_url=PUBLIC,
        sender="ClientVault <no-reply@example.test>",
        batch_window_seconds=WINDOW,
        stuck_after_seconds=overrides.get("stuck", 600.0),
        claim_limit=int(overrides.get("limit", 50)),
    )


def mailer(sink: SMTPSink) -> SMTPMailer:
    return SMTPMailer(host=sink.host, port=sink.port, starttls=False, timeout=5)


async def upload(
    services: Services,
    world: World,
    *,
    actor: str,
    client: str = "acme",
    name: str = "report.pdf",
    action: str = "document.created",
) -> uuid.UUID:
    client_id = world.acme if client == "acme" else world.globex
    folder_id = world.acme_folder if client == "acme" else world.globex_folder
    document_id = uuid.uuid4()
    person = world[actor]
    context = audit.AuditContext(actor_id=str(person.id), actor_role=person.role.value)
    async with transaction(services.sessions) as session:
        await audit.record(
            session,
            context,
            action,
            client_id=client_id,
            target_type="document",
            target_id=document_id,
            document_id=document_id,
            details={"name": name, "folder_id": str(folder_id), "version": 1},
        )
    return document_id


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_one_upload_mails_the_client_only(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    document_id = await upload(services, world, actor="sam", name="Q3 figures.xlsx")
    first = await run_once(services.sessions, mailer(smtp_sink), config())
    assert first.items == 1 and first.messages == 0  # the window is still open
    assert smtp_sink.messages == []
    result = await run_once(services.sessions, mailer(smtp_sink), config(), now=later(WINDOW + 1))
    assert result.sent == 1
    assert [rcpts for rcpts, _ in smtp_sink.messages] == [[world["alice"].email]]
    message = smtp_sink.messages[0][1]
    assert message["Subject"] == "ClientVault: 1 document change"
    assert message["Message-ID"].endswith("@clientvault>")
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Q3 figures.xlsx" in body and f"{PUBLIC}/documents/{document_id}" in body
    # Nothing more on later runs, and the delivery is in the audit log.
    await run_once(services.sessions, mailer(smtp_sink), config(), now=later(3 * WINDOW))
    assert len(smtp_sink.messages) == 1
    async with transaction(services.sessions) as session:
        sent = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "notification.sent")
                )
            )
            .scalars()
            .all()
        )
    assert len(sent) == 1 and message["Message-ID"] in sent[0].details
    assert str(world["alice"].id) in sent[0].details


async def test_ten_events_in_the_window_make_one_email(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    for i in range(10):
        await upload(services, world, actor="sam", name=f"file-{i:02d}.pdf")
    await run_once(services.sessions, mailer(smtp_sink), config())
    await run_once(services.sessions, mailer(smtp_sink), config(), now=later(WINDOW + 1))
    to_alice = smtp_sink.to(world["alice"].email)
    assert len(smtp_sink.messages) == 1 and len(to_alice) == 1
    assert to_alice[0]["Subject"] == "ClientVault: 10 document changes"
    html = to_alice[0].get_body(("html",))
    assert html is not None
    content = html.get_content()
    for i in range(10):
        assert f"file-{i:02d}.pdf" in content


async def test_cadence_off_gets_nothing(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    async with transaction(services.sessions) as session:
        await set_cadence(session, world["alice"].id, world.acme, Cadence.OFF)
    await upload(services, world, actor="ada")  # sam (staff) and alice could hear of it
    await run_once(services.sessions, mailer(smtp_sink), config())
    await run_once(services.sessions, mailer(smtp_sink), config(), now=later(WINDOW + 1))
    assert [rcpts for rcpts, _ in smtp_sink.messages] == [[world["sam"].email]]


async def test_smtp_down_then_up_delivers_each_once(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    smtp_sink.stop()
    for i in range(20):
        if i % 2:
            await upload(services, world, actor="gina", client="globex", name=f"g{i}")
        else:
            await upload(services, world, actor="sam", name=f"a{i}")
    await run_once(services.sessions, mailer(smtp_sink), config())  # items wait for the window
    down = await run_once(services.sessions, mailer(smtp_sink), config(), now=later(WINDOW + 1))
    assert down.retrying == 2 and down.sent == 0
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(Notification))).scalars().all()
    assert {r.state for r in rows} == {DeliveryState.PENDING}
    assert all(r.attempts == 1 and r.last_error for r in rows)
    assert all(r.next_attempt_at > later(WINDOW + 1) for r in rows)  # backed off
    smtp_sink.start()
    up = await run_once(services.sessions, mailer(smtp_sink), config(), now=later(3600 * 2))
    assert up.sent == 2
    await run_once(services.sessions, mailer(smtp_sink), config(), now=later(3600 * 5))
    assert len(smtp_sink.to(world["alice"].email)) == 1
    assert len(smtp_sink.to(world["bob"].email)) == 1
    assert len(smtp_sink.messages) == 2
    for _, message in smtp_sink.messages:
        assert message["Subject"] == "ClientVault: 10 document changes"


async def test_killed_worker_claim_is_recovered_once(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await upload(services, world, actor="sam")
    await upload(services, world, actor="gina", client="globex")
    await run_once(services.sessions, mailer(smtp_sink), config())
    now = later(WINDOW + 1)
    # Build the batches without delivering: the SMTP server is down for this run.
    smtp_sink.stop()
    await run_once(services.sessions, mailer(smtp_sink), config(), now=now)
    smtp_sink.start()
    retry_at = now + timedelta(hours=2)
    async with transaction(services.sessions) as session:
        claims = await outbox.claim(session, now=retry_at, limit=10)
    assert len(claims) == 2  # ... and the worker holding them dies here
    soon = await run_once(
        services.sessions, mailer(smtp_sink), config(), now=retry_at + timedelta(seconds=10)
    )
    assert soon.sent == 0 and smtp_sink.messages == []
    recovered = await run_once(
        services.sessions, mailer(smtp_sink), config(), now=retry_at + timedelta(minutes=11)
    )
    assert recovered.sent == 2
    # The dead worker's late outcome is ignored: its claim is no longer the current one.
    async with transaction(services.sessions) as session:
        assert not await outbox.mark_sent(session, claims[0], now=retry_at)
    await run_once(
        services.sessions, mailer(smtp_sink), config(), now=retry_at + timedelta(hours=1)
    )
    assert sorted(r[0] for r, _ in smtp_sink.messages) == sorted(
        [world["alice"].email, world["bob"].email]
    )


async def test_two_workers_in_parallel_send_no_duplicates(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises all writers (BEGIN IMMEDIATE); SKIP LOCKED is PostgreSQL's")
    now = datetime.now(UTC)
    async with transaction(services.sessions) as session:
        for i in range(40):
            session.add(
                Notification(
                    user_id=world["alice"].id,
                    email=world["alice"].email,
                    message_id=f"<{uuid.uuid4()}@clientvault>",
                    subject=f"ClientVault: {i} document changes",
                    body_text="x",
                    body_html="<p>x</p>",
                    seqs="[]",
                    state=DeliveryState.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    for i in range(6):
        await upload(services, world, actor="sam", name=f"p{i}")
    await run_once(services.sessions, mailer(smtp_sink), config(limit=0))  # items only

    async def worker() -> int:
        total = 0
        while True:
            result = await run_once(
                services.sessions, mailer(smtp_sink), config(limit=3), now=later(WINDOW + 1)
            )
            total += result.sent
            if result.sent == 0 and result.retrying == 0:
                return total

    counts = await asyncio.gather(worker(), worker())
    assert sum(counts) == 41
    ids = [m["Message-ID"] for _, m in smtp_sink.messages]
    assert len(ids) == 41 and len(set(ids)) == 41


async def test_permanent_refusal_fails_without_retry(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    smtp_sink.reject.add(world["alice"].email)
    await upload(services, world, actor="sam")
    await run_once(services.sessions, mailer(smtp_sink), config())
    result = await run_once(services.sessions, mailer(smtp_sink), config(), now=later(WINDOW + 1))
    assert result.failed == 1 and result.sent == 0
    await run_once(services.sessions, mailer(smtp_sink), config(), now=later(86400))
    async with transaction(services.sessions) as session:
        row = (await session.execute(select(Notification))).scalar_one()
    assert row.state == DeliveryState.FAILED and row.attempts == 1
    assert row.last_error is not None and "550" in row.last_error
    assert smtp_sink.messages == []


async def test_run_loop_stops_on_cancel(services: Services, world: World, tmp_path: Path) -> None:
    await upload(services, world, actor="sam")
    task = asyncio.create_task(
        run(
            services.sessions,
            OutboxDirMailer(tmp_path / "out"),
            NotifyConfig(public_url=PUBLIC, batch_window_seconds=0),
            interval_seconds=0.05,
        )
    )
    for _ in range(100):
        if (tmp_path / "out").exists() and any((tmp_path / "out").glob("*.eml")):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1


def test_render_escapes_html_and_links_to_the_public_url() -> None:
    item = Item(
        action="document.created",
        name="<script>alert(1)</script>\r\nBcc: x@evil.test",
        client="Acme & Co",
        folder="Tax",
        who="Sam",
        when="2026-11-23T10:00:00.000Z",
        link=f"{PUBLIC}/documents/{uuid.uuid4()}",
    )
    rendered = render([item])
    assert rendered.subject == "ClientVault: 1 document change"
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "Acme &amp; Co" in rendered.html
    assert f'href="{PUBLIC}/documents/' in rendered.html
    assert (
        "\r" not in rendered.text and "<script>alert(1)</script> Bcc: x@evil.test" in rendered.text
    )
    message = build_message(
        sender="ClientVault <no-reply@example.test>",
        recipient="alice@example.test",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id="<m1@clientvault>",
        date=datetime.now(UTC),
    )
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert parsed.get_all("Bcc") is None
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    for link in (line for line in rendered.text.splitlines() if "://" in line):
        assert link.strip().startswith(PUBLIC)


def test_build_message_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match=r"linefeed|newline|CR|LF|header"):
        build_message(
            sender="a@example.test",
            recipient="alice@example.test\r\nBcc: x@evil.test",
            subject="s",
            text="t",
            html="h",
            message_id="<m@clientvault>",
            date=datetime.now(UTC),
        )


async def test_outbox_dir_mailer_writes_a_parsable_eml(tmp_path: Path) -> None:
    rendered = render([])
    message = build_message(
        sender="ClientVault <no-reply@example.test>",
        recipient="alice@example.test",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id="<m2@clientvault>",
        date=datetime.now(UTC),
    )
    await OutboxDirMailer(tmp_path / "outbox").send(message)
    files = list((tmp_path / "outbox").iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<m2@clientvault>"
    assert parsed["To"] == "alice@example.test"
