from __future__ import annotations

import asyncio
import itertools
import json

from tests.fixtures.app import TEST_CONTEXT
from tests.fixtures.tamper import tamper
from vault import audit
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services


async def _append(svc: Services, n: int, action: str = "test.event") -> None:
    for i in range(n):
        async with transaction(svc.sessions) as session:
            await audit.append(session, TEST_CONTEXT, action, details={"i": i, "name": "é\n{"})


async def _verify(svc: Services) -> audit.Verification:
    async with transaction(svc.sessions) as session:
        return await audit.verify(session)


async def test_chain_verifies_and_is_gap_free(services: Services) -> None:
    await _append(services, 5)
    result = await _verify(services)
    assert result.ok and result.events == 5
    async with transaction(services.sessions) as session:
        rows = [e async for e in audit.iter_events(session)]
    assert [e.seq for e in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.leaf_hash for a, b in itertools.pairwise(rows))
    assert result.head == rows[-1].leaf_hash


async def test_leaf_hash_is_rfc9162_leaf_over_canonical_json(services: Services) -> None:
    await _append(services, 1)
    async with transaction(services.sessions) as session:
        event = await session.get(AuditEvent, 1)
    assert event is not None
    import hashlib

    line = json.dumps(audit.entry(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(b"\x00" + line.encode()).hexdigest() == event.leaf_hash
    assert '"name":"é\\n{"' in line  # details stay inside one JSON string (no log injection)


async def _tamper(svc: Services, sql: str) -> None:
    await tamper(svc.engine, sql)


async def test_altered_event_is_found(services: Services) -> None:
    await _append(services, 5)
    await _tamper(services, "UPDATE audit_events SET actor_role = 'admin' WHERE seq = 3")
    result = await _verify(services)
    assert not result.ok and result.first_bad_seq == 3 and result.reason
    assert "altered" in result.reason


async def test_altered_details_are_found(services: Services) -> None:
    await _append(services, 3)
    await tamper(
        services.engine,
        "UPDATE audit_events SET details = :d WHERE seq = 2",
        params={"d": '{"i":99}'},
    )
    result = await _verify(services)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_removed_event_is_found(services: Services) -> None:
    await _append(services, 5)
    await _tamper(services, "DELETE FROM audit_events WHERE seq = 2")
    result = await _verify(services)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_reordered_events_are_found(services: Services) -> None:
    await _append(services, 5)
    # Swap the contents of events 2 and 3 while keeping seq numbers in place.
    await _tamper(services, "UPDATE audit_events SET seq = -2 WHERE seq = 2")
    await _tamper(services, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    await _tamper(services, "UPDATE audit_events SET seq = 3 WHERE seq = -2")
    result = await _verify(services)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_truncated_tail_is_found(services: Services) -> None:
    await _append(services, 5)
    await _tamper(services, "DELETE FROM audit_events WHERE seq = 5")
    result = await _verify(services)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.reason and "truncated" in result.reason


async def test_rolled_back_change_leaves_no_event(services: Services) -> None:
    class Boom(Exception):
        pass

    try:
        async with transaction(services.sessions) as session:
            await audit.append(session, TEST_CONTEXT, "test.event")
            raise Boom
    except Boom:
        pass
    await _append(services, 1)
    result = await _verify(services)
    assert result.ok and result.events == 1


async def test_concurrent_appends_stay_gap_free(services: Services) -> None:
    async def writer(n: int) -> None:
        for i in range(n):
            async with transaction(services.sessions) as session:
                await audit.append(session, TEST_CONTEXT, "test.concurrent", details={"i": i})

    await asyncio.gather(*(writer(10) for _ in range(8)))
    result = await _verify(services)
    assert result.ok and result.events == 80
