"""Email about document requests: urgent submissions to staff, and reminders before and after
the due date, each sent once, also by two workers at once; run with the app's configuration
against a real SMTP server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.reminders import html, tick
from tests.fixtures.smtp import SMTPSink
from vault.db import transaction
from vault.models import AuditEvent, User
from vault.notifications import Cadence, set_preference
from web.services import Services

API = "/api/v1"
DUE_SOON = "Reminder: documents requested are due soon"
OVERDUE = "Reminder: documents requested are overdue"


async def settle(services: Services, sink: SMTPSink, now: datetime) -> None:
    """A pass at `now` and one after the batch window, so whatever is due goes out."""
    await tick(services, sink, now)
    window = services.settings.notify.batch_window_seconds
    await tick(services, sink, now + timedelta(seconds=window + 1))


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def today(days: int = 0) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


async def ask(
    http: httpx.AsyncClient, world: World, due: date, title: str = "Year end"
) -> dict[str, Any]:
    response = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={
            "title": title,
            "due_date": due.isoformat(),
            "folder_id": str(world.acme_folder),
            "items": ["Bank statements"],
        },
        headers=world["sam"].auth,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def mentioning(sink: SMTPSink, address: str, text: str) -> list[EmailMessage]:
    return [m for m in sink.to(address) if text in html(m)]


async def reminders(services: Services) -> list[dict[str, Any]]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "request.reminder")
            .order_by(col(AuditEvent.seq))
        )
        return [json.loads(e.details) for e in rows.scalars().all()]


async def test_a_submission_reaches_staff_at_once_whatever_their_cadence(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    async with transaction(services.sessions) as session:
        sam = await session.get_one(User, world["sam"].id)
        await set_preference(session, TEST_CONTEXT, sam, world.acme, Cadence.DAILY, daily_hour=9)
    request = await ask(http, world, today(10))
    put = await http.put(
        f"{API}/folders/{world.acme_folder}/files/statements.pdf",
        content=b"%PDF",
        headers=world["alice"].auth,
    )
    item = request["items"][0]["id"]
    submitted = await http.post(
        f"{API}/requests/{request['id']}/items/{item}/submit",
        json={"document_id": put.json()["document_id"]},
        headers=world["alice"].auth,
    )
    assert submitted.status_code == 200
    now = datetime.now(UTC)
    # No window and no waiting for 09:00: one pass delivers it.
    await tick(services, smtp_sink, now)
    [message] = smtp_sink.to(world["sam"].email)
    assert "Submitted for a document request" in html(message)
    assert "Bank statements" in html(message)
    assert f"/documents/{put.json()['document_id']}" in html(message)
    # The client heard of the request itself, in her own batch.
    await tick(services, smtp_sink, now + timedelta(seconds=61))
    [asked] = smtp_sink.to(world["alice"].email)
    assert "Document requested" in html(asked) and "Year end" in html(asked)


async def test_due_soon_and_overdue_each_remind_once(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    due = today(10)
    request = await ask(http, world, due)
    await settle(services, smtp_sink, datetime.now(UTC))  # the "requested" email
    alice = world["alice"].email
    assert mentioning(smtp_sink, alice, DUE_SOON) == []
    await settle(services, smtp_sink, noon(due - timedelta(days=4)))  # not yet
    assert mentioning(smtp_sink, alice, DUE_SOON) == []
    for days_before in (3, 2, 0):
        await settle(services, smtp_sink, noon(due - timedelta(days=days_before)))
    [soon] = mentioning(smtp_sink, alice, DUE_SOON)
    assert "Year end" in html(soon)
    assert mentioning(smtp_sink, alice, OVERDUE) == []
    for days_after in (1, 2, 30):
        await settle(services, smtp_sink, noon(due + timedelta(days=days_after)))
    [late] = mentioning(smtp_sink, alice, OVERDUE)
    assert "Year end" in html(late)
    assert len(mentioning(smtp_sink, alice, DUE_SOON)) == 1
    # Reminders are for the client's members, who owe the documents.
    assert mentioning(smtp_sink, world["sam"].email, "Reminder:") == []
    assert [(r["request_id"], r["stage"]) for r in await reminders(services)] == [
        (request["id"], "due_soon"),
        (request["id"], "overdue"),
    ]


async def test_reminders_stop_when_closed_or_when_nothing_is_owed(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    closed = await ask(http, world, today(10), title="Closed one")
    await http.post(f"{API}/requests/{closed['id']}/close", headers=world["sam"].auth)
    handed_in = await ask(http, world, today(10), title="Handed in")
    put = await http.put(
        f"{API}/folders/{world.acme_folder}/files/all.pdf",
        content=b"%PDF",
        headers=world["alice"].auth,
    )
    await http.post(
        f"{API}/requests/{handed_in['id']}/items/{handed_in['items'][0]['id']}/submit",
        json={"document_id": put.json()["document_id"]},
        headers=world["alice"].auth,
    )
    for day in (today(8), today(11), today(40)):
        await settle(services, smtp_sink, noon(day))
    assert mentioning(smtp_sink, world["alice"].email, "Reminder:") == []
    assert await reminders(services) == []


async def test_a_request_opened_close_to_its_due_date_is_only_reminded_when_late(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    await ask(http, world, today(1), title="Rush job")
    await settle(services, smtp_sink, noon(today(0)))
    await settle(services, smtp_sink, noon(today(1)))
    assert mentioning(smtp_sink, world["alice"].email, DUE_SOON) == []
    await settle(services, smtp_sink, noon(today(2)))
    assert len(mentioning(smtp_sink, world["alice"].email, OVERDUE)) == 1


async def test_two_workers_remind_each_request_once(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises all writers (BEGIN IMMEDIATE); the race is PostgreSQL's")
    titles = [f"Request {i:02d}" for i in range(8)]
    for title in titles:
        await ask(http, world, today(10), title=title)
    await settle(services, smtp_sink, datetime.now(UTC))
    smtp_sink.messages.clear()
    moment = noon(today(8))
    for _ in range(3):
        await asyncio.gather(*(tick(services, smtp_sink, moment) for _ in range(2)))
    await settle(services, smtp_sink, moment + timedelta(minutes=5))
    stages = [(r["title"], r["stage"]) for r in await reminders(services)]
    assert sorted(stages) == [(t, "due_soon") for t in titles]
    bodies = "".join(html(m) for m in mentioning(smtp_sink, world["alice"].email, DUE_SOON))
    for title in titles:
        assert bodies.count(title) == 1, title
