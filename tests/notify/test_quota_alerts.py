"""Quota alerts: the client's staff and users are emailed once when usage reaches 80 %,
90 % and 100 % of the quota, through the notifier and a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.fixtures.app import World
from tests.fixtures.quotas import put, set_quota
from tests.fixtures.reminders import html, tick
from tests.fixtures.smtp import SMTPSink
from web.services import Services

ALERT = "Storage quota in use"


def alerts(sink: SMTPSink, address: str) -> list[str]:
    """The thresholds named by the quota alerts `address` received, in order."""
    found = []
    for message in sink.to(address):
        body = html(message)
        if ALERT in body:
            found += [p for p in ("80 %", "90 %", "100 %") if f"{p}</" in body]
    return found


async def test_staff_and_client_users_are_emailed_once_per_threshold(
    http: httpx.AsyncClient, services: Services, world: World, smtp_sink: SMTPSink
) -> None:
    await set_quota(services, world.acme, 1000)
    moment = datetime.now(UTC)
    for size in (500, 300, 50, 60, 10, 80, 0):  # 50, 80, 85, 91, 92, 100, 100 %
        assert (await put(http, world, f"{size}.bin", b"q" * size)).status_code == 201
        moment += timedelta(hours=1)  # past every batch window and staff cadence
        await tick(services, smtp_sink, moment)
        await tick(services, smtp_sink, moment + timedelta(minutes=30))
    assert alerts(smtp_sink, "alice@example.test") == ["80 %", "90 %", "100 %"]
    assert alerts(smtp_sink, "sam@example.test") == ["80 %", "90 %", "100 %"]
    # Neither the other client's users nor its staff hear of Acme's storage.
    assert alerts(smtp_sink, "bob@example.test") == []
    assert alerts(smtp_sink, "gina@example.test") == []
