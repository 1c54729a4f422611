"""The documents of a request item, in the domain: a document submitted again is listed once
(its newer version); the first submission after a rejection starts the list again; a
document purged from the trash leaves every item's list, the item kept."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.request_uploads import item_row, open_request
from tests.fixtures.retention import NOW, put
from vault import document_requests as request_service
from vault import retention
from vault.db import transaction
from vault.models import Document
from vault.policy import SYSTEM
from vault.request_tables import ItemDocument, ItemStatus
from vault.retention import Rules
from web.services import Services


async def submit(
    services: Services, request_id: uuid.UUID, item_id: uuid.UUID, document_id: str
) -> request_service.RequestView:
    async with transaction(services.sessions) as session:
        return await request_service.submit_item(
            session,
            SYSTEM,
            TEST_CONTEXT,
            request_id=request_id,
            item_id=item_id,
            document_id=uuid.UUID(document_id),
        )


async def listed(services: Services, request_id: uuid.UUID, item_id: uuid.UUID) -> list[str]:
    async with transaction(services.sessions) as session:
        view = await request_service.get_request(session, SYSTEM, request_id)
    return [f"{d.name} v{d.version}" for d in view.documents[item_id]]


async def test_a_document_submitted_again_is_listed_once_at_its_newer_version(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    a = await put(http, world, world.acme_folder, "a.txt", 1)
    b = await put(http, world, world.acme_folder, "b.txt", 1)
    await submit(services, request_id, item_id, a)
    await submit(services, request_id, item_id, b)
    await put(http, world, world.acme_folder, "a.txt", 1)  # a's version 2
    view = await submit(services, request_id, item_id, a)
    assert [f"{d.name} v{d.version}" for d in view.documents[item_id]] == ["b.txt v1", "a.txt v2"]
    item = await item_row(services, item_id)
    assert str(item.document_id) == a and item.version == 2


async def test_a_submission_after_a_rejection_starts_the_list_again(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    a = await put(http, world, world.acme_folder, "a.txt", 1)
    b = await put(http, world, world.acme_folder, "b.txt", 1)
    await submit(services, request_id, item_id, a)
    async with transaction(services.sessions) as session:
        await request_service.answer_item(
            session, SYSTEM, TEST_CONTEXT, request_id=request_id, item_id=item_id,
            status=ItemStatus.REJECTED, reason="Wrong year",
        )  # fmt: skip
    # Rejected: the client still sees what was rejected.
    assert await listed(services, request_id, item_id) == ["a.txt v1"]
    await submit(services, request_id, item_id, b)
    assert await listed(services, request_id, item_id) == ["b.txt v1"]
    assert (await item_row(services, item_id)).status == ItemStatus.SUBMITTED


async def test_a_document_purged_from_the_trash_leaves_the_items_list(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    kept = await put(http, world, world.acme_folder, "kept.txt", 1)
    gone = await put(http, world, world.acme_folder, "gone.txt", 1)
    await submit(services, request_id, item_id, kept)
    await submit(services, request_id, item_id, gone)
    deleted = await http.delete(f"/api/v1/documents/{gone}", headers=world["sam"].auth)
    assert deleted.status_code == 204
    # In the trash, it is no longer listed for the item.
    assert await listed(services, request_id, item_id) == ["kept.txt v1"]
    async with transaction(services.sessions) as session:
        await session.execute(
            update(Document)
            .where(col(Document.id) == uuid.UUID(gone))
            .values(deleted_at=NOW - timedelta(days=40))
        )
        await retention.set_policy(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None,
            rules=Rules(trash_days=30),
        )  # fmt: skip
    run = await retention.apply(services.sessions, services.store, now=NOW)
    assert [(d.kind, d.name) for d in run.deleted] == [("document", "gone.txt")]
    async with services.sessions() as session:
        links = (await session.execute(select(ItemDocument))).scalars().all()
        assert await session.get(Document, uuid.UUID(gone)) is None
    assert [str(link.document_id) for link in links] == [kept]
    item = await item_row(services, item_id)
    assert item.status == ItemStatus.SUBMITTED and item.document_id is None
