"""Alerts (issue 12, item 4): each rule fires at its threshold and not below it, once per
window, and reaches the auditors in one email, once, through the outbox and SMTP."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import sqlalchemy

from notify import alert_mail
from notify.smtp import SMTPMailer
from notify.worker import run_once
from tests.fixtures.app import World
from tests.fixtures.smtp import SMTPSink
from vault import audit
from vault.audit import AuditContext, alerts
from vault.audit.alerts import Rules, Threshold
from vault.db import transaction
from vault.models import AuditEvent, User
from web.services import Services, notify_config

RULES = Rules(
    downloads=Threshold(3, 10), refusals=Threshold(3, 10), failed_signins=Threshold(3, 10)
)
API = "/api/v1"


def acting(world: World, name: str, ip: str = "203.0.113.5") -> AuditContext:
    person = world[name]
    return AuditContext(str(person.id), person.role.value, ip, "test")


async def record(services: Services, context: AuditContext, action: str, **kw: object) -> None:
    async with transaction(services.sessions) as session:
        await audit.append(session, context, action, **kw)  # type: ignore[arg-type]


async def evaluate(services: Services) -> list[alerts.Alert]:
    async with transaction(services.sessions) as session:
        return await alerts.evaluate(session, RULES)


async def test_downloads_fire_past_the_threshold_once_per_window(
    services: Services, world: World
) -> None:
    alice = acting(world, "alice")
    documents = [uuid.uuid4() for _ in range(3)]
    for document in documents:
        await record(services, alice, "document.downloaded", document_id=document)
    # The same document again is not one more document.
    await record(services, alice, "document.downloaded", document_id=documents[0])
    assert await evaluate(services) == [], "3 documents is not more than 3"
    await record(services, alice, "document.downloaded", document_id=uuid.uuid4())
    [alert] = await evaluate(services)
    assert (alert.rule, alert.actor_id) == ("downloads", str(world["alice"].id))
    assert json.loads(alert.details)["documents"] == 4
    assert len(json.loads(alert.seqs)) == 5
    for _ in range(3):
        await record(services, alice, "document.downloaded", document_id=uuid.uuid4())
    assert await evaluate(services) == [], "one alert per window"
    # Someone else's downloads are counted for them, not for alice.
    sam = acting(world, "sam")
    for _ in range(4):
        await record(services, sam, "document.downloaded", document_id=uuid.uuid4())
    [other] = await evaluate(services)
    assert other.actor_id == str(world["sam"].id)


async def test_checking_a_download_does_not_load_the_events_in_its_window(
    services: Services, world: World
) -> None:
    """Each event is checked against the events in its window by counting them in the
    database: loading them made the check of the n-th download load n events, so a person
    downloading many documents cost the process more with every download."""
    alice = acting(world, "alice")
    await evaluate(services)  # the world's own events
    for _ in range(60):
        await record(services, alice, "document.downloaded", document_id=uuid.uuid4())
    loaded: list[int] = []

    def count(target: AuditEvent, context: object) -> None:
        loaded.append(target.seq)

    rules = Rules(downloads=Threshold(100, 10))
    sqlalchemy.event.listen(AuditEvent, "load", count)
    try:
        async with transaction(services.sessions) as session:
            assert await alerts.evaluate(session, rules) == []
        assert len(loaded) == 60, "the 60 events checked, each once"
        loaded.clear()
        for _ in range(45):
            await record(services, alice, "document.downloaded", document_id=uuid.uuid4())
        async with transaction(services.sessions) as session:
            [alert] = await alerts.evaluate(session, rules)
    finally:
        sqlalchemy.event.remove(AuditEvent, "load", count)
    # Past the threshold, the events behind the alert are named by seq, not loaded.
    assert len(loaded) == 45
    assert json.loads(alert.details)["documents"] == 101
    assert len(json.loads(alert.seqs)) == 101


async def test_repeated_refusals_fire_at_the_threshold(services: Services, world: World) -> None:
    bob = acting(world, "bob")
    for _ in range(2):
        await record(services, bob, "access.denied", outcome="denied")
    await record(services, bob, "folder.listed")
    assert await evaluate(services) == []
    await record(services, bob, "access.denied", outcome="denied")
    [alert] = await evaluate(services)
    assert alert.rule == "refusals"
    assert json.loads(alert.details)["refusals"] == 3


async def test_a_burst_of_failed_sign_ins_from_one_address(
    services: Services, world: World
) -> None:
    stranger = AuditContext(ip="198.51.100.7")
    elsewhere = AuditContext(ip="198.51.100.8")
    for context in (stranger, stranger, elsewhere):
        await record(services, context, "auth.login", outcome="failure")
    assert await evaluate(services) == []
    await record(services, stranger, "auth.login", outcome="locked")
    [alert] = await evaluate(services)
    assert (alert.rule, alert.subject, alert.ip) == (
        "failed_signins",
        "ip:198.51.100.7",
        "198.51.100.7",
    )


async def test_a_sign_in_from_an_address_never_seen_for_the_account(
    services: Services, world: World
) -> None:
    home, cafe = acting(world, "alice", "203.0.113.5"), acting(world, "alice", "192.0.2.44")
    await record(services, home, "auth.login")  # the first sign-in ever: nothing to compare
    await record(services, home, "auth.login")
    await record(services, acting(world, "bob", "192.0.2.44"), "auth.login")
    assert await evaluate(services) == []
    await record(services, cafe, "auth.login")
    [alert] = await evaluate(services)
    assert (alert.rule, alert.ip) == ("new_address", "192.0.2.44")
    await record(services, cafe, "auth.login")
    assert await evaluate(services) == [], "seen now"


async def test_role_and_key_changes(services: Services, world: World) -> None:
    ada = acting(world, "ada")
    await record(services, ada, "user.updated", details={"active": False})
    assert await evaluate(services) == []
    await record(services, ada, "user.updated", details={"role": {"from": "client", "to": "admin"}})
    await record(services, ada, "user.role_changed", details={"from": "client", "to": "staff"})
    await record(services, AuditContext(actor_role="cli"), "keys.rotated")
    assert [a.rule for a in await evaluate(services)] == ["privilege"] * 3


async def test_each_alert_is_an_audit_event(services: Services, world: World) -> None:
    await record(services, acting(world, "ada"), "mfa.reset")
    [alert] = await evaluate(services)
    async with transaction(services.sessions) as session:
        events = [e async for e in audit.iter_events(session)]
    [raised] = [e for e in events if e.action == "alert.raised"]
    assert raised.target_id == str(alert.id)
    assert json.loads(raised.details)["rule"] == "privilege"
    assert await evaluate(services) == [], "its own event raises nothing"


async def deliver(services: Services, sink: SMTPSink) -> None:
    mailer = SMTPMailer(host=sink.host, port=sink.port, starttls=False, timeout=5)
    await run_once(services.sessions, mailer, notify_config(services.settings, services.keyring))


async def test_auditors_get_one_email_per_batch_once(
    services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    async with transaction(services.sessions) as session:
        otto = await session.get(User, world["otto"].id)
        assert otto is not None
        otto.locale = "fa"
        session.add(otto)
    for context in [AuditContext(ip="198.51.100.7")] * 3:
        await record(services, context, "auth.login", outcome="failure")
    await record(services, acting(world, "ada"), "keys.rotated")
    url = services.settings.server.public_url
    assert await alert_mail.run_once(services.sessions, RULES, public_url=url) == (2, 1)
    await deliver(services, smtp_sink)
    [message] = smtp_sink.to(world["otto"].email)
    assert message["Subject"] == "ClientVault: ۲ هشدار تازه"
    assert message["Content-Language"] == "fa"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "ورودهای ناموفق پشت‌سرهم" in text and "تغییر نقش یا کلید" in text
    assert f"{url}/audit/alerts/" in text
    # Nothing new: no second email, and the sent one is not sent again.
    assert await alert_mail.run_once(services.sessions, RULES, public_url=url) == (0, 0)
    await deliver(services, smtp_sink)
    assert len(smtp_sink.to(world["otto"].email)) == 1
    assert smtp_sink.to(world["ada"].email) == [], "auditors only"


async def test_the_api_lists_alerts_for_auditors_only(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await record(services, acting(world, "ada"), "keys.rotated")
    [alert] = await evaluate(services)
    listed = await http.get(f"{API}/audit/alerts", headers=world["otto"].auth)
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["alerts"]
    assert (shown["id"], shown["rule"], shown["emailed"]) == (str(alert.id), "privilege", False)
    one = await http.get(f"{API}/audit/alerts/{alert.id}", headers=world["ada"].auth)
    assert [e["action"] for e in one.json()["events"]] == ["keys.rotated"]
    for who in ("sam", "alice"):
        refused = await http.get(f"{API}/audit/alerts/{alert.id}", headers=world[who].auth)
        assert refused.status_code in (403, 404)
    assert (await http.get(f"{API}/audit/alerts", headers=world["sam"].auth)).status_code == 403
    bad = await http.get(f"{API}/audit/alerts?limit=0", headers=world["otto"].auth)
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("locale", "subject", "direction"),
    [
        ("en", "ClientVault: 2 new alerts", "ltr"),
        ("fa", "ClientVault: ۲ هشدار تازه", "rtl"),
        ("he", "ClientVault: 2 התראות חדשות", "rtl"),
        ("ja", "ClientVault: 新しいアラート 2 件", "ltr"),
        ("zh", "ClientVault：2 条新警报", "ltr"),
    ],
)
def test_the_email_reads_in_each_language(locale: str, subject: str, direction: str) -> None:
    when = "2026-12-04T10:00:00.000Z"
    shown = [
        alerts.Alert(rule=rule, subject="ip:x", ip="192.0.2.1", seq=1, ts=when, seqs="[1]",
                     details="{}")
        for rule in ("failed_signins", "privilege")
    ]  # fmt: skip
    message = alert_mail.compose(shown, {}, locale=locale, public_url="https://vault.example")
    assert message.subject == subject
    assert f'dir="{direction}"' in message.body_html
    for alert in shown:
        assert alert_mail.text(locale, alert.rule) in message.body_text
        assert f"https://vault.example/audit/alerts/{alert.id}" in message.body_text
    # The time keeps its left-to-right order inside right-to-left text.
    assert f'<bdi dir="ltr">{when}</bdi>' in message.body_html


async def test_concurrent_passes_raise_each_alert_once(services: Services, world: World) -> None:
    """Several app processes evaluate at once: the cursor row makes them take turns."""
    await record(services, acting(world, "ada"), "keys.rotated")

    async def one_pass() -> int:
        async with transaction(services.sessions) as session:
            return len(await alerts.evaluate(session, RULES))

    results = await asyncio.gather(*(one_pass() for _ in range(4)))
    assert sorted(results) == [0, 0, 0, 1]
    async with transaction(services.sessions) as session:
        assert await alerts.count(session) == 1
