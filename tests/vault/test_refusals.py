"""The rate limit on `access.denied` events (vault.refusals): per subject and reason, shared
through the database, summarised once the window is over (issue 13, item 3)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from vault import audit, refusals
from vault.audit import AuditContext
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services

LIMITS = refusals.Limits(per_window=3, window=timedelta(minutes=1))
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
MALLORY = AuditContext(ip="203.0.113.9", user_agent="curl")
EVE = AuditContext(actor_id="eve", actor_role="client", ip="198.51.100.7")
REFUSAL = refusals.Refusal(
    "GET", "/api/v1/documents/{document_id}", "not_found", 404, "document", "x"
)


async def refuse(services: Services, context: AuditContext, at: datetime) -> bool:
    async with transaction(services.sessions) as session:
        return await refusals.record(session, context, REFUSAL, now=at, limits=LIMITS)


async def events(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))
        return list(rows.scalars().all())


async def test_refusals_over_the_limit_are_counted_not_written(services: Services) -> None:
    written = [await refuse(services, MALLORY, T0 + timedelta(seconds=i)) for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert [e.action for e in await events(services)] == ["access.denied"] * 3


async def test_the_next_window_opens_with_a_summary(services: Services) -> None:
    for i in range(10):
        await refuse(services, MALLORY, T0 + timedelta(seconds=i))
    assert await refuse(services, MALLORY, T0 + timedelta(seconds=61))
    found = await events(services)
    assert [e.action for e in found[3:]] == ["access.denied_suppressed", "access.denied"]
    summary = json.loads(found[3].details)
    assert summary == {
        "reason": "not_found",
        "suppressed": 7,
        "since": "2026-12-04T12:00:00.000Z",
        "until": "2026-12-04T12:01:00.000Z",
    }
    assert (found[3].ip, found[3].outcome) == ("203.0.113.9", "denied")
    async with transaction(services.sessions) as session:
        assert (await audit.verify(session)).ok


async def test_a_stopped_flood_is_summarised_by_anyone_elses_refusal(services: Services) -> None:
    for i in range(5):
        await refuse(services, MALLORY, T0 + timedelta(seconds=i))
    await refuse(services, EVE, T0 + timedelta(minutes=5))
    found = await events(services)
    assert [(e.action, e.actor_id, e.ip) for e in found[3:]] == [
        ("access.denied", "eve", "198.51.100.7"),
        ("access.denied_suppressed", None, "203.0.113.9"),
    ]
    assert json.loads(found[4].details)["suppressed"] == 2
    async with transaction(services.sessions) as session:
        left = (await session.execute(select(refusals.RefusalWindow.key))).scalars().all()
    assert len(left) == 1  # Mallory's window is closed; Eve's is open


async def test_subjects_and_reasons_have_windows_of_their_own(services: Services) -> None:
    csrf = refusals.Refusal("POST", "/api/v1/folders", "csrf", 403)
    for i in range(4):
        await refuse(services, MALLORY, T0 + timedelta(seconds=i))
        await refuse(services, EVE, T0 + timedelta(seconds=i))
        async with transaction(services.sessions) as session:
            await refusals.record(session, EVE, csrf, now=T0 + timedelta(seconds=i), limits=LIMITS)
    assert len(await events(services)) == 9


async def test_concurrent_refusals_share_one_count(services: Services) -> None:
    # Transactions racing as app processes would: the window row and the audit head are
    # locked in one order, so the count is exact and nothing deadlocks.
    written = await asyncio.gather(*(refuse(services, MALLORY, T0) for _ in range(12)))
    assert sorted(written) == [False] * 9 + [True] * 3
    async with transaction(services.sessions) as session:
        window = (await session.execute(select(refusals.RefusalWindow))).scalar_one()
        assert window.count == 12
        assert (await audit.verify(session)).ok
