"""On PostgreSQL the audit table is append-only: UPDATE, DELETE and TRUNCATE are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.app import TEST_CONTEXT
from tests.fixtures.postgres import PostgresServer
from vault import audit
from vault.db import create_engine, session_factory, transaction


@pytest.fixture
async def engine(
    postgres_server: PostgresServer, postgres_template: str
) -> AsyncIterator[AsyncEngine]:
    name = f"a_{uuid.uuid4().hex[:16]}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    engine = create_engine(postgres_server.url(name))
    try:
        yield engine
    finally:
        await engine.dispose()
        postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor_role = 'admin' WHERE seq = 2",
        "UPDATE audit_events SET seq = seq + 100",
        "DELETE FROM audit_events WHERE seq = 3",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "TRUNCATE audit_events CASCADE",
    ],
)
async def test_changing_or_removing_events_is_refused(engine: AsyncEngine, statement: str) -> None:
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        for i in range(3):
            await audit.append(session, TEST_CONTEXT, "test.event", details={"i": i})
    with pytest.raises(DBAPIError, match="audit_events is append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    async with transaction(sessions) as session:
        result = await audit.verify(session)
        assert result.ok and result.events == 3
        await audit.append(session, TEST_CONTEXT, "test.event")  # appending still works
    async with transaction(sessions) as session:
        assert (await audit.verify(session)).events == 4
