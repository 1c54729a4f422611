"""Audit searches on both databases: the indexes of migration 0011, and pages that match
the filters' definition whichever plan the database picks."""

from __future__ import annotations

import random

import pytest
from alembic import command
from sqlalchemy import Connection, inspect
from sqlmodel import select

from vault import audit
from vault.audit import AuditContext
from vault.audit import query as aq
from vault.db import alembic_config, current_revision, head_revision, transaction
from vault.models import AuditEvent
from web.services import Services

SEARCH_INDEXES = {
    "ix_audit_events_client_seq": ["client_id", "seq"],
    "ix_audit_events_actor_seq": ["actor_id", "seq"],
    "ix_audit_events_document_seq": ["document_id", "seq"],
    "ix_audit_events_action_outcome_seq": ["action", "outcome", "seq"],
    "ix_audit_events_outcome_seq": ["outcome", "seq"],
    "ix_audit_events_client_ts": ["client_id", "ts"],
}
REPLACED = {
    "ix_audit_events_client_id",
    "ix_audit_events_actor_id",
    "ix_audit_events_document_id",
    "ix_audit_events_action",
}
CLIENTS = ["c-1", "c-2", "c-3"]
ACTORS = ["a-1", "a-2", "a-3", "a-4"]
DOCUMENTS = ["d-1", "d-2", "d-3", "d-4", "d-5"]
# From the vocabulary (a family search asks for its actions), but for one appended outside it.
ACTIONS = ["document.viewed", "document.downloaded", "folder.listed", "hold.placed", "test.x_y"]
OUTCOMES = ["success", "denied", "failure"]


def _indexes(connection: Connection) -> dict[str, list[str]]:
    return {
        str(index["name"]): [str(c) for c in index["column_names"]]
        for index in inspect(connection).get_indexes("audit_events")
    }


async def test_migration_adds_the_search_indexes(services: Services) -> None:
    async with services.engine.connect() as conn:
        found = await conn.run_sync(_indexes)
    for name, columns in SEARCH_INDEXES.items():
        assert found.get(name) == columns, (name, found)
    assert not REPLACED & set(found)
    assert found["ix_audit_events_ts"] == ["ts"]


async def test_migration_downgrades_and_upgrades_again(services: Services) -> None:
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0010"))
        old = await conn.run_sync(_indexes)
    assert set(old) >= REPLACED and not set(SEARCH_INDEXES) & set(old)
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        new = await conn.run_sync(_indexes)
    assert set(SEARCH_INDEXES) <= set(new)
    assert await current_revision(services.engine) == head_revision()


async def _fill(services: Services, count: int) -> list[AuditEvent]:
    rng = random.Random(3)
    async with transaction(services.sessions) as session:
        for _ in range(count):
            action = rng.choice(ACTIONS)
            document = rng.choice(DOCUMENTS) if action.startswith("document.") else None
            await audit.append(
                session,
                AuditContext(actor_id=rng.choice([*ACTORS, None]), actor_role="staff"),
                action,
                outcome=rng.choice(OUTCOMES),
                client_id=rng.choice([*CLIENTS, None]),
                document_id=document,
            )
    async with transaction(services.sessions) as session:
        return [e async for e in audit.iter_events(session)]


def _matches(event: AuditEvent, filters: aq.AuditFilter) -> bool:
    action = filters.action
    return (
        (filters.client_id is None or event.client_id == filters.client_id)
        and (filters.actor is None or event.actor_id == filters.actor)
        and (filters.document_id is None or event.document_id == filters.document_id)
        and (filters.outcome is None or event.outcome == filters.outcome)
        and (
            action is None
            or (
                event.action.startswith(action[:-1])
                if action.endswith(".*")
                else event.action == action
            )
        )
        and (filters.since is None or event.ts >= filters.since)
    )


@pytest.mark.parametrize(
    "filters",
    [
        aq.AuditFilter(client_id="c-2"),
        aq.AuditFilter(client_id="c-1", since="2000-01-01T00:00:00.000Z"),
        aq.AuditFilter(actor="a-3"),
        aq.AuditFilter(document_id="d-4"),
        aq.AuditFilter(action="document.*", outcome="denied"),
        aq.AuditFilter(action="document.*"),
        aq.AuditFilter(action="hold.*"),
        aq.AuditFilter(action="test.*"),
        aq.AuditFilter(action="folder.listed", outcome="success"),
        aq.AuditFilter(outcome="failure"),
        aq.AuditFilter(client_id="c-3", actor="a-1", action="document.*"),
        aq.AuditFilter(),
    ],
    ids=repr,
)
async def test_pages_walk_exactly_the_matching_events_newest_first(
    services: Services, filters: aq.AuditFilter
) -> None:
    events = await _fill(services, 240)
    expected = [e.seq for e in sorted(events, key=lambda e: -e.seq) if _matches(e, filters)]
    assert expected  # the filter selects something, so the comparison means something
    walked: list[int] = []
    cursor: int | None = None
    async with transaction(services.sessions) as session:
        while True:
            rows, cursor = await aq.page(session, filters, limit=7, before=cursor)
            walked.extend(e.seq for e in rows)
            if cursor is None:
                break
    assert walked == expected


def test_a_family_is_its_actions_not_a_prefix_match() -> None:
    """`hold.*` alone must be servable by the (action, outcome, seq) index: an IN list of
    the family's actions, not LIKE 'hold.%', which that index cannot serve under a non-C
    collation (the walk above checks the rows are the same)."""
    sql = str(aq.AuditFilter(action="hold.*").apply(select(AuditEvent)))
    assert "LIKE" not in sql.upper() and " IN (" in sql.upper()
    assert aq.AuditFilter(action="hold.*").apply(select(AuditEvent)).compile().params[
        "action_1"
    ] == ["hold.placed", "hold.released"]
