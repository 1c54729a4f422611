"""The SMTP relay down for a while, with two app processes each running a notifier on one
PostgreSQL database: the messages wait in the outbox, and once the relay is back every one
arrives exactly once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from tests.fixtures.live import LiveApp, LiveAppFactory, LiveTenant
from tests.fixtures.smtp import SMTPSink

# The outbox retries a transient failure after 30 s, then 60 s, … (notify/outbox.py).
RETRY_WAIT = 75.0


def outbox(app: LiveApp) -> list[tuple[str, str, int]]:
    """(message_id, state, attempts) of every message, read straight from the database."""
    dsn = app.settings.database.url.replace("postgresql+asyncpg", "postgresql")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT message_id, state, attempts FROM notifications").fetchall()
    return [(str(m), str(s), int(a)) for m, s, a in rows]


async def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def upload(app: LiveApp, tenant: LiveTenant, name: str) -> None:
    async with app.http() as http:
        response = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/{name}",
            content=name.encode(),
            headers=tenant.admin.auth,
        )
    assert response.status_code == 201, response.text


async def test_mail_queued_while_the_relay_is_down_arrives_once_when_it_returns(
    live_app: LiveAppFactory, smtp_sink: SMTPSink
) -> None:
    config: dict[str, Any] = {
        "smtp": {"host": smtp_sink.host, "port": smtp_sink.port, "starttls": False},
        "notify": {"batch_window_seconds": 0},
    }
    first = await live_app(database="postgresql", config=config)
    shared = {
        "database": {"url": first.settings.database.url},
        "keys": {"file": str(first.settings.keys_path)},
    }
    second = await live_app(config={**config, **shared})
    tenant = await first.provision("Acme")
    # Only users who set a password (accepted their invitation) are emailed.
    recipient = "reader@example.test"
    password = b"correct horse battery staple 42\n"
    await first.cli(
        "user",
        "add",
        recipient,
        "--role",
        "client",
        "--client",
        "Acme",
        "--password-stdin",
        stdin=password,
    )

    smtp_sink.stop()
    await upload(first, tenant, "while-down-1.pdf")
    await upload(second, tenant, "while-down-2.pdf")
    # Each message was tried and failed at least once: queued, not lost and not failed.
    await wait_for(
        lambda: (
            (rows := outbox(first))
            and all(state == "pending" and attempts >= 1 for _, state, attempts in rows)
        ),
        30,
        "a failed delivery attempt of every message",
    )
    queued = {message_id for message_id, _, _ in outbox(first)}
    assert smtp_sink.to(recipient) == []

    smtp_sink.start()
    await wait_for(
        lambda: all(state == "sent" for _, state, _ in outbox(first)),
        RETRY_WAIT,
        "every message to be sent",
    )
    await asyncio.sleep(6)  # one more round of both notifiers: nothing is sent twice
    received = [m["Message-ID"] for m in smtp_sink.to(recipient)]
    assert len(received) == len(set(received)), "a message arrived twice"
    assert set(received) == queued
    bodies = [m.get_body(("plain",)) for m in smtp_sink.to(recipient)]
    names = " ".join(str(body.get_content()) for body in bodies if body is not None)
    assert "while-down-1.pdf" in names and "while-down-2.pdf" in names
    assert first.alive() and second.alive()
