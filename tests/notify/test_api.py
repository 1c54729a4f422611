"""Notifications through the HTTP API: publishing messages, preferences, profile language and
time zone, one-click unsubscribe, and the admins' view of undelivered email.

The app's own notifier is off here; the tests run it with the app's real configuration
(`web.services.notify_config`) against a real SMTP server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlmodel import col, select

from notify import RunResult, SMTPMailer, run_once
from tests.fixtures.app import World
from tests.fixtures.smtp import SMTPSink
from vault.db import transaction
from vault.models import AuditEvent
from vault.notifications import DeliveryState, Notification
from web.services import Services, notify_config
from web.settings import ServerSettings, Settings

PUBLIC = "https://files.example.test"
SECRET_BYTES = b"CONTENT-THAT-MUST-NEVER-BE-MAILED-7f3a9c"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"server": ServerSettings(public_url=PUBLIC)})


async def deliver(services: Services, sink: SMTPSink) -> RunResult:
    """Two notifier passes: now (collect), then after the batch window (send)."""
    config = notify_config(services.settings, services.keyring)
    mailer = SMTPMailer(host=sink.host, port=sink.port, starttls=False, timeout=5)
    now = datetime.now(UTC)
    await run_once(services.sessions, mailer, config, now=now)
    later = now + timedelta(seconds=config.batch_window_seconds + 1)
    return await run_once(services.sessions, mailer, config, now=later)


async def put_file(
    http: httpx.AsyncClient, world: World, who: str, name: str, **params: str
) -> httpx.Response:
    return await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/{name}",
        params=params,
        content=SECRET_BYTES,
        headers=world[who].auth,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def events(services: Services, action: str) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert response.json()["field"] == field


async def test_a_publishing_message_goes_into_the_email_and_nothing_else_does(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    note = "Hello Alice,\nplease sign <b>page 2</b>.\r\nBcc: evil@example.test"
    response = await put_file(http, world, "sam", "engagement.pdf", message=note)
    assert response.status_code == 201, response.text
    # Clients cannot attach one; an over-long one is refused, naming the field.
    assert_problem(await put_file(http, world, "alice", "mine.pdf", message="hi"), 403)
    assert_problem(
        await put_file(http, world, "sam", "long.pdf", message="x" * 2001), 422, "message"
    )
    assert_problem(
        await put_file(http, world, "sam", "bell.pdf", message="ring\x07ring"), 422, "message"
    )
    result = await deliver(services, smtp_sink)
    assert result.sent == 1
    [(recipients, message)] = smtp_sink.messages
    assert recipients == [world["alice"].email]
    text, html = parts(message)
    assert "Message from sam@example.test:" in text
    assert "> please sign <b>page 2</b>." in text and "> Bcc: evil@example.test" in text
    assert "please sign &lt;b&gt;page 2&lt;/b&gt;." in html and "<b>page 2" not in html
    assert message.get_all("Bcc") is None
    assert "sign" not in message["Subject"] and "engagement" not in message["Subject"]
    # No document content and no secret, in any part or header.
    raw = bytes(message)
    for secret in (SECRET_BYTES.decode(), world["sam"].token, world["alice"].token):
        assert secret not in raw.decode("ascii", "replace") and secret not in text + html
    document_id = response.json()["document_id"]
    assert f'href="{PUBLIC}/documents/{document_id}"' in html
    [created] = await events(services, "document.created")
    assert json.loads(created.details)["message"] == note.replace("\r\n", "\n")


async def test_preferences_per_client(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice, sam = world["alice"], world["sam"]
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert mine["default_cadence"] == "immediate" and mine["default_daily_hour"] == 8
    assert mine["locale"] == "en" and mine["timezone"] == "UTC"
    assert mine["clients"] == [
        {
            "client_id": str(world.acme),
            "client_name": "Acme",
            "cadence": "immediate",
            "daily_hour": 8,
            "is_default": True,
            "default_cadence": "immediate",
        }
    ]
    staff = (await http.get("/api/v1/me/notifications", headers=sam.auth)).json()
    assert staff["clients"][0]["cadence"] == "every_15_minutes"  # staff default differs

    url = f"/api/v1/me/notifications/{world.acme}"
    response = await http.put(url, json={"cadence": "daily", "daily_hour": 7}, headers=alice.auth)
    assert response.status_code == 200, response.text
    assert response.json()["cadence"] == "daily" and response.json()["daily_hour"] == 7
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert mine["clients"][0]["cadence"] == "daily" and not mine["clients"][0]["is_default"]
    [changed] = await events(services, "notification.preference_changed")
    assert changed.actor_id == str(alice.id) and changed.client_id == str(world.acme)

    for body, field in (
        ({"cadence": "weekly"}, "cadence"),
        ({}, "cadence"),
        ({"cadence": "daily", "daily_hour": 24}, "daily_hour"),
        ({"cadence": "daily", "daily_hour": True}, "daily_hour"),
        ({"cadence": "daily", "daily_hour": "7"}, "daily_hour"),
    ):
        assert_problem(await http.put(url, json=body, headers=alice.auth), 422, field)
    # Another client's, an unknown one, and one an admin sees but does not belong to: 404.
    for client_id, who in ((world.globex, "alice"), (uuid.uuid4(), "alice"), (world.acme, "ada")):
        response = await http.put(
            f"/api/v1/me/notifications/{client_id}",
            json={"cadence": "off"},
            headers=world[who].auth,
        )
        assert_problem(response, 404)


async def test_profile_language_and_time_zone(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"]
    response = await http.put(
        "/api/v1/me/profile",
        json={"locale": "fa", "timezone": "Asia/Tehran", "display_name": "  Alice   Ahmadi "},
        headers=alice.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(alice.id),
        "email": alice.email,
        "display_name": "Alice Ahmadi",
        "locale": "fa",
        "timezone": "Asia/Tehran",
    }
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert (mine["locale"], mine["timezone"]) == ("fa", "Asia/Tehran")
    for body, field in (
        ({"locale": "xx"}, "locale"),
        ({"locale": 5}, "locale"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": "/etc/localtime"}, "timezone"),
        ({"display_name": "x\u202eevil"}, "display_name"),
    ):
        response = await http.put("/api/v1/me/profile", json=body, headers=alice.auth)
        assert_problem(response, 422, field)
    # Nothing of the refused requests was kept.
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert (mine["locale"], mine["timezone"]) == ("fa", "Asia/Tehran")


async def test_one_click_unsubscribe(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    alice = world["alice"]
    await http.put("/api/v1/me/profile", json={"locale": "he"}, headers=alice.auth)
    assert (await put_file(http, world, "sam", "first.pdf")).status_code == 201
    await deliver(services, smtp_sink)
    [message] = smtp_sink.to(alice.email)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{PUBLIC}/unsubscribe/")
    path = link.removeprefix(PUBLIC)

    # GET only asks: a link scanner fetching the URL changes nothing.
    page = await http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="he" dir="rtl">' in page.text and '<form method="post"' in page.text
    assert alice.email in page.text and "Acme" in page.text
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert mine["clients"][0]["cadence"] == "immediate"

    # The mail provider's POST: no session, no token header, RFC 8058's body.
    done = await http.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "Acme" in done.text
    mine = (await http.get("/api/v1/me/notifications", headers=alice.auth)).json()
    assert mine["clients"][0]["cadence"] == "off"
    [changed] = await events(services, "notification.preference_changed")
    details = json.loads(changed.details)
    assert details["via"] == "unsubscribe-link" and changed.target_id == str(alice.id)
    assert changed.actor_id is None and changed.client_id == str(world.acme)

    assert (await put_file(http, world, "sam", "second.pdf")).status_code == 201
    await deliver(services, smtp_sink)
    assert len(smtp_sink.to(alice.email)) == 1

    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (f"/unsubscribe/{forged}", "/unsubscribe/abc", "/unsubscribe/a.b.c"):
        assert (await http.get(bad)).status_code == 404
        assert (await http.post(bad)).status_code == 404


async def test_failed_emails_are_shown_to_admins_and_can_be_retried(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    alice, ada = world["alice"], world["ada"]
    smtp_sink.reject.add(alice.email)
    assert (await put_file(http, world, "sam", "bounced.pdf")).status_code == 201
    result = await deliver(services, smtp_sink)
    assert result.failed == 1 and smtp_sink.messages == []

    listed = await http.get("/api/v1/notifications/failed", headers=ada.auth)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["notifications"]
    assert row["email"] == alice.email and row["client_id"] == str(world.acme)
    assert row["state"] == "failed" and row["attempts"] == 1 and "550" in row["last_error"]
    for who in ("sam", "alice", "otto"):  # hidden, like anything the caller may not see
        assert_problem(await http.get("/api/v1/notifications/failed", headers=world[who].auth), 404)
        retry = await http.post(f"/api/v1/notifications/{row['id']}/retry", headers=world[who].auth)
        assert_problem(retry, 404)
    [failed] = await events(services, "notification.failed")
    assert failed.target_id == row["id"] and failed.outcome == "error"

    smtp_sink.reject.clear()
    retry = await http.post(f"/api/v1/notifications/{row['id']}/retry", headers=ada.auth)
    assert retry.status_code == 202 and retry.json()["state"] == "pending"
    assert_problem(
        await http.post(f"/api/v1/notifications/{row['id']}/retry", headers=ada.auth), 409
    )
    assert_problem(
        await http.post(f"/api/v1/notifications/{uuid.uuid4()}/retry", headers=ada.auth), 404
    )
    await deliver(services, smtp_sink)
    assert len(smtp_sink.to(alice.email)) == 1
    assert (await http.get("/api/v1/notifications/failed", headers=ada.auth)).json() == {
        "notifications": []
    }
    async with transaction(services.sessions) as session:
        stored = (await session.execute(select(Notification))).scalar_one()
    assert stored.state == DeliveryState.SENT
    [retried] = await events(services, "notification.retried")
    assert retried.actor_id == str(ada.id)
