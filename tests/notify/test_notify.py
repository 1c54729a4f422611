"""The notifier against a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from notify import (
    NotifyConfig,
    OutboxDirMailer,
    UnsubscribeLinks,
    build_message,
    outbox,
    render,
    run,
)
from notify.render import Item
from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.notify import PUBLIC, WINDOW, later, tick, upload
from tests.fixtures.smtp import SMTPSink
from vault.db import transaction
from vault.models import AuditEvent, ClientAccess, User
from vault.notifications import Cadence, DeliveryState, Notification, set_preference
from web.services import Services


async def prefer(
    services: Services,
    user_id: uuid.UUID,
    client_id: uuid.UUID,
    cadence: Cadence,
    daily_hour: int | None = None,
) -> None:
    async with transaction(services.sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        await set_preference(session, TEST_CONTEXT, user, client_id, cadence, daily_hour=daily_hour)


async def set_user(services: Services, user_id: uuid.UUID, **values: str) -> None:
    async with transaction(services.sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        for name, value in values.items():
            setattr(user, name, value)
        session.add(user)


async def audit_events(services: Services, action: str) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


def names_in(message: EmailMessage) -> str:
    html = message.get_body(("html",))
    assert html is not None
    content: str = html.get_content()
    return content


async def test_one_upload_mails_the_client_only(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    document_id = await upload(services, world, actor="sam", name="Q3 figures.xlsx")
    first = await tick(services, smtp_sink)
    assert first.items == 1 and first.messages == 0  # the window is still open
    assert smtp_sink.messages == []
    result = await tick(services, smtp_sink, later(WINDOW + 1))
    assert result.sent == 1
    assert [rcpts for rcpts, _ in smtp_sink.messages] == [[world["alice"].email]]
    message = smtp_sink.messages[0][1]
    assert message["Subject"] == "ClientVault: 1 document change"
    assert message["Message-ID"].endswith("@clientvault>")
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Q3 figures.xlsx" in body and f"{PUBLIC}/documents/{document_id}" in body
    # One-click unsubscribe (RFC 8058), signed for exactly this recipient and client.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC}/unsubscribe/") and unsubscribe.endswith(">")
    token = unsubscribe[1:-1].rsplit("/", 1)[1]
    links = UnsubscribeLinks(services.keyring, PUBLIC)
    assert links.verify(token) == (world["alice"].id, world.acme)
    assert unsubscribe[1:-1] in body  # the same link, visibly, in the text
    # Nothing more on later runs, and the delivery is in the audit log, as what the client
    # was told and when.
    await tick(services, smtp_sink, later(3 * WINDOW))
    assert len(smtp_sink.messages) == 1
    sent = await audit_events(services, "notification.sent")
    assert len(sent) == 1 and message["Message-ID"] in sent[0].details
    assert sent[0].client_id == str(world.acme) and sent[0].target_type == "notification"
    details = json.loads(sent[0].details)
    assert details["recipient_id"] == str(world["alice"].id)
    assert details["to"] == world["alice"].email
    [created] = await audit_events(services, "document.created")
    assert details["seqs"] == [created.seq]
    async with transaction(services.sessions) as session:
        row = (await session.execute(select(Notification))).scalar_one()
    assert sent[0].target_id == str(row.id) and row.state == DeliveryState.SENT


async def test_ten_events_in_the_window_make_one_email(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    for i in range(10):
        await upload(services, world, actor="sam", name=f"file-{i:02d}.pdf")
    await tick(services, smtp_sink)
    await tick(services, smtp_sink, later(WINDOW + 1))
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
    await prefer(services, world["alice"].id, world.acme, Cadence.OFF)
    await upload(services, world, actor="ada")  # sam (staff) and alice could hear of it
    await tick(services, smtp_sink)
    await tick(services, smtp_sink, later(WINDOW + 1))
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
    await tick(services, smtp_sink)  # items wait for the window
    down = await tick(services, smtp_sink, later(WINDOW + 1))
    assert down.retrying == 2 and down.sent == 0
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(Notification))).scalars().all()
    assert {r.state for r in rows} == {DeliveryState.PENDING}
    assert all(r.attempts == 1 and r.last_error for r in rows)
    assert all(r.next_attempt_at > later(WINDOW + 1) for r in rows)  # backed off
    smtp_sink.start()
    up = await tick(services, smtp_sink, later(3600 * 2))
    assert up.sent == 2
    await tick(services, smtp_sink, later(3600 * 5))
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
    await tick(services, smtp_sink)
    now = later(WINDOW + 1)
    # Build the batches without delivering: the SMTP server is down for this run.
    smtp_sink.stop()
    await tick(services, smtp_sink, now)
    smtp_sink.start()
    retry_at = now + timedelta(hours=2)
    async with transaction(services.sessions) as session:
        claims = await outbox.claim(session, now=retry_at, limit=10)
    assert len(claims) == 2  # ... and the worker holding them dies here
    soon = await tick(services, smtp_sink, retry_at + timedelta(seconds=10))
    assert soon.sent == 0 and smtp_sink.messages == []
    recovered = await tick(services, smtp_sink, retry_at + timedelta(minutes=11))
    assert recovered.sent == 2
    # The dead worker's late outcome is ignored: its claim is no longer the current one.
    async with transaction(services.sessions) as session:
        assert not await outbox.mark_sent(session, claims[0], now=retry_at)
    await tick(services, smtp_sink, retry_at + timedelta(hours=1))
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
    await tick(services, smtp_sink, limit=0)  # items only

    async def worker() -> int:
        total = 0
        while True:
            result = await tick(services, smtp_sink, later(WINDOW + 1), limit=3)
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
    await tick(services, smtp_sink)
    result = await tick(services, smtp_sink, later(WINDOW + 1))
    assert result.failed == 1 and result.sent == 0
    await tick(services, smtp_sink, later(86400))
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
            NotifyConfig(
                public_url=PUBLIC,
                links=UnsubscribeLinks(services.keyring, PUBLIC),
                batch_window_seconds=0,
                client_default_cadence=Cadence.IMMEDIATE,
            ),
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


def day_at(hour: int, minute: int = 0, *, days: int = 0, tz: str = "UTC") -> datetime:
    """A fixed wall-clock moment a few days ahead in `tz`, as UTC: the injected clock."""
    zone = ZoneInfo(tz)
    base = datetime.now(UTC).astimezone(zone).date() + timedelta(days=3 + days)
    return datetime.combine(base, time(hour, minute), tzinfo=zone).astimezone(UTC)


async def test_daily_digest_is_sent_once_at_its_local_hour(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    alice = world["alice"]
    await set_user(services, alice.id, timezone="Asia/Tehran")
    await prefer(services, alice.id, world.acme, Cadence.DAILY, daily_hour=9)

    def tehran(hour: int, minute: int = 0, days: int = 0) -> datetime:
        return day_at(hour, minute, days=days, tz="Asia/Tehran")

    assert (tehran(9).hour, tehran(9).minute) == (5, 30)  # 09:00 in Tehran is 05:30 UTC
    for i in range(3):
        await upload(services, world, actor="sam", name=f"morning-{i}.pdf")
    await tick(services, smtp_sink, tehran(7))
    await tick(services, smtp_sink, tehran(8, 59))
    assert smtp_sink.to(alice.email) == []
    # Two workers reach the digest's time together: still one digest.
    await asyncio.gather(tick(services, smtp_sink, tehran(9)), tick(services, smtp_sink, tehran(9)))
    [digest] = smtp_sink.to(alice.email)
    assert digest["Subject"] == "ClientVault: 3 document changes"
    for i in range(3):
        assert f"morning-{i}.pdf" in names_in(digest)
    text = digest.get_body(("plain",))
    assert text is not None and "(Asia/Tehran)" in text.get_content()
    # A change after the digest waits for tomorrow's, however often the worker runs.
    await upload(services, world, actor="sam", name="evening.pdf")
    for moment in (tehran(9, 30), tehran(12), tehran(23, 59), tehran(8, 59, days=1)):
        await tick(services, smtp_sink, moment)
    assert len(smtp_sink.to(alice.email)) == 1
    await tick(services, smtp_sink, tehran(9, days=1))
    await tick(services, smtp_sink, tehran(9, 1, days=1))
    first, second = smtp_sink.to(alice.email)
    assert first is digest
    assert "evening.pdf" in names_in(second) and "morning-0.pdf" not in names_in(second)
    assert len(await audit_events(services, "notification.sent")) == 2


async def test_role_defaults_apply_without_a_preference(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    """Clients hear at once (batched), staff at the top of the hour: the configured defaults."""
    start = day_at(10, 5)
    await upload(services, world, actor="ada", name="by-admin.pdf")  # ada is not a recipient
    options = {"client": Cadence.IMMEDIATE, "staff": Cadence.HOURLY}
    await tick(services, smtp_sink, start, **options)
    await tick(services, smtp_sink, start + timedelta(seconds=WINDOW + 1), **options)
    assert [rcpts for rcpts, _ in smtp_sink.messages] == [[world["alice"].email]]
    await tick(services, smtp_sink, day_at(10, 59), **options)
    assert len(smtp_sink.messages) == 1
    await tick(services, smtp_sink, day_at(11, 0), **options)
    assert [rcpts for rcpts, _ in smtp_sink.messages] == [
        [world["alice"].email],
        [world["sam"].email],
    ]


async def test_every_15_minutes_collects_a_quarter_hour(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await prefer(services, world["alice"].id, world.acme, Cadence.EVERY_15_MINUTES)
    await upload(services, world, actor="sam", name="one.pdf")
    await tick(services, smtp_sink, day_at(10, 1))
    await upload(services, world, actor="sam", name="two.pdf")
    await tick(services, smtp_sink, day_at(10, 14))
    assert smtp_sink.messages == []
    await tick(services, smtp_sink, day_at(10, 15))
    [message] = smtp_sink.to(world["alice"].email)
    assert "one.pdf" in names_in(message) and "two.pdf" in names_in(message)


async def test_a_submitted_request_reaches_staff_at_once(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    """Urgent whatever the staff member's cadence; ordinary changes keep theirs."""
    await prefer(services, world["sam"].id, world.acme, Cadence.DAILY, daily_hour=9)
    await prefer(services, world["alice"].id, world.acme, Cadence.DAILY, daily_hour=9)
    await upload(services, world, actor="alice", name="passport.pdf", action="request.submitted")
    await upload(services, world, actor="ada", name="engagement.pdf")
    result = await tick(services, smtp_sink, day_at(10, 0))  # no window, no waiting for 09:00
    assert result.sent == 1
    [message] = smtp_sink.to(world["sam"].email)
    assert "Submitted for a document request" in names_in(message)
    assert "passport.pdf" in names_in(message)
    assert smtp_sink.to(world["alice"].email) == []  # her digest is tomorrow at 09:00
    await tick(services, smtp_sink, day_at(9, 0, days=1))
    [digest] = smtp_sink.to(world["alice"].email)
    assert "engagement.pdf" in names_in(digest) and "passport.pdf" not in names_in(digest)


async def revoke(services: Services, user_id: uuid.UUID, client_id: uuid.UUID) -> None:
    async with transaction(services.sessions) as session:
        access = await session.get(ClientAccess, (user_id, client_id))
        assert access is not None
        await session.delete(access)


async def test_recipients_who_lose_access_before_sending_get_nothing(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await upload(services, world, actor="sam", name="acme.pdf")
    await upload(services, world, actor="gina", client="globex", name="globex.pdf")
    await tick(services, smtp_sink)
    # Alice loses access while her batch waits: it is never rendered.
    await revoke(services, world["alice"].id, world.acme)
    smtp_sink.stop()
    await tick(services, smtp_sink, later(WINDOW + 1))
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(Notification))).scalars().all()
    assert [r.user_id for r in rows] == [world["bob"].id]
    # Bob's message is rendered but undeliverable; he loses access before the retry.
    await revoke(services, world["bob"].id, world.globex)
    smtp_sink.start()
    result = await tick(services, smtp_sink, later(3 * 3600))
    assert result.sent == 0 and smtp_sink.messages == []
    async with transaction(services.sessions) as session:
        row = (await session.execute(select(Notification))).scalar_one()
    assert row.state == DeliveryState.CANCELLED


async def test_email_is_in_the_recipients_language_and_time_zone(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await set_user(services, world["alice"].id, locale="fa", timezone="Asia/Tehran")
    await upload(services, world, actor="sam", name="گزارش مالی.pdf")
    await tick(services, smtp_sink)
    await tick(services, smtp_sink, later(WINDOW + 1))
    [message] = smtp_sink.to(world["alice"].email)
    assert message["Subject"] == "ClientVault: ۱ تغییر در اسناد"
    assert message["Content-Language"] == "fa"
    html = names_in(message)
    assert '<html lang="fa" dir="rtl">' in html
    assert "سند جدید" in html and "گزارش مالی.pdf" in html
    text = message.get_body(("plain",))
    assert text is not None and "(Asia/Tehran)" in text.get_content()
