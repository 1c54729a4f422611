"""Delivery receipts when two nodes finish the same person's download of the same version at
once (found under load through the cluster harness, bench/load.py)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlmodel import col, func, select

from tests.fixtures.app import TEST_CONTEXT, World
from vault import receipts
from vault.db import transaction
from vault.models import AuditEvent, Version, VersionReceipt
from web.services import Services


async def test_a_receipt_another_node_recorded_first_is_no_error(
    services: Services, world: World, http: httpx.AsyncClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two writers at once need PostgreSQL (SQLite serialises them)")
    uploaded = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/r.pdf",
        content=b"%PDF-1.7 receipt",
        headers=world["sam"].auth,
    )
    assert uploaded.status_code == 201, uploaded.text
    document_id = uuid.UUID(uploaded.json()["document_id"])
    async with services.sessions() as session:
        version = (
            await session.execute(select(Version).where(Version.document_id == document_id))
        ).scalar_one()
    completed = receipts.Completed(world.acme, document_id, version.id, 1, world["alice"].id)

    async def other_node() -> bool:
        async with transaction(services.sessions) as session:
            return await receipts.record_completed(session, TEST_CONTEXT, completed)

    async with transaction(services.sessions) as session:
        assert await receipts.record_completed(session, TEST_CONTEXT, completed) is True
        # The other insert now waits on this transaction's row of the same primary key.
        racing = asyncio.create_task(other_node())
        await asyncio.sleep(0.5)
        assert not racing.done()
    assert await racing is False

    async with services.sessions() as session:
        kept = await session.scalar(
            select(func.count())
            .select_from(VersionReceipt)
            .where(VersionReceipt.version_id == version.id)
        )
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(col(AuditEvent.action) == "document.download_completed")
        )
    assert kept == 1
    assert audited == 2  # both completions are audited
