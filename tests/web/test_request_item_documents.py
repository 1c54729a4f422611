"""Several documents per request item: each upload or attached document adds to the item's
list (once per document), the API lists them with who submitted each and when, staff
accept or reject the item as a whole, and a submission after a rejection starts the list
again. The request page lists the files with links, and a plain form takes several files."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from alembic import command
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, form_for
from tests.fixtures.request_uploads import item_row, open_request, tus_upload
from tests.fixtures.signin import sign_in
from vault import document_requests as request_service
from vault.db import alembic_config, transaction
from vault.models import AuditEvent
from vault.policy import SYSTEM
from vault.request_tables import ItemDocument, ItemStatus
from web.services import Services

API = "/api/v1"


async def api_item(http: httpx.AsyncClient, world: World, request_id: uuid.UUID) -> Any:
    response = await http.get(f"{API}/requests/{request_id}", headers=world["sam"].auth)
    assert response.status_code == 200, response.text
    return response.json()["items"][0]


async def submitted_count(services: Services) -> int:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.seq).where(AuditEvent.action == "request.submitted")
        )
        return len(rows.all())


async def test_each_upload_adds_to_the_items_documents(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    jan = await tus_upload(http, auth, b"january", filename="jan.pdf", request_item_id=str(item_id))
    feb = await tus_upload(
        http, auth, b"february", filename="feb.pdf", request_item_id=str(item_id)
    )

    item = await api_item(http, world, request_id)
    assert item["status"] == "submitted"
    assert [d["name"] for d in item["documents"]] == ["jan.pdf", "feb.pdf"]
    assert [d["id"] for d in item["documents"]] == [
        jan.headers["document-id"],
        feb.headers["document-id"],
    ]
    for document in item["documents"]:
        assert document["submitted_by"] == str(world["alice"].id)
        assert document["submitted_at"] and document["version"] == 1
    # The item's own fields name the latest submission, as before.
    assert item["document_id"] == feb.headers["document-id"] and item["version"] == 1
    assert await submitted_count(services) == 2


async def test_the_same_document_submitted_again_is_listed_once(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    await tus_upload(http, auth, b"one", filename="bank.pdf", request_item_id=str(item_id))
    # The same name again is the document's next version, submitted again.
    again = await tus_upload(http, auth, b"two", filename="bank.pdf", request_item_id=str(item_id))
    # And through the API's submit, naming the document.
    url = f"{API}/requests/{request_id}/items/{item_id}/submit"
    resubmitted = await http.post(
        url, headers=auth, json={"document_id": again.headers["document-id"], "version": 1}
    )
    assert resubmitted.status_code == 200, resubmitted.text

    (document,) = resubmitted.json()["items"][0]["documents"]
    assert document["name"] == "bank.pdf" and document["version"] == 1
    async with services.sessions() as session:
        rows = (await session.execute(select(ItemDocument))).scalars().all()
    assert len(rows) == 1
    # Each submission is audited all the same.
    assert await submitted_count(services) == 3


async def test_attaching_adds_beside_an_upload_and_staff_answer_the_item_as_a_whole(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    existing = await tus_upload(
        http, auth, b"%PDF old", filename="old.pdf", folder_id=str(world.acme_folder)
    )
    await tus_upload(http, auth, b"new", filename="new.pdf", request_item_id=str(item_id))
    await sign_in(http, world["alice"])
    page = await http.get(f"/requests/{request_id}")
    attached = await http.post(
        f"/requests/{request_id}/items/{item_id}/attach",
        data={"csrf_token": csrf_of(page.text), "document_id": existing.headers["document-id"]},
    )
    assert attached.status_code == 303, attached.text
    item = await api_item(http, world, request_id)
    assert [d["name"] for d in item["documents"]] == ["new.pdf", "old.pdf"]

    # Staff reject the item: its list stays for the client to see what was rejected.
    answer = f"{API}/requests/{request_id}/items/{item_id}/answer"
    rejected = await http.post(
        answer, headers=world["sam"].auth, json={"status": "rejected", "reason": "Page 2?"}
    )
    assert rejected.status_code == 200, rejected.text
    item = rejected.json()["items"][0]
    assert item["status"] == "rejected" and len(item["documents"]) == 2

    # The client submits again: a new list, which staff accept.
    fixed = await tus_upload(
        http, auth, b"complete", filename="complete.pdf", request_item_id=str(item_id)
    )
    item = await api_item(http, world, request_id)
    assert item["status"] == "submitted"
    assert [d["id"] for d in item["documents"]] == [fixed.headers["document-id"]]
    accepted = await http.post(answer, headers=world["sam"].auth, json={"status": "accepted"})
    assert accepted.status_code == 200
    assert accepted.json()["items"][0]["status"] == "accepted"
    assert accepted.json()["closed_at"] is not None  # its only item: the request is complete


async def test_the_request_page_lists_each_items_files_and_takes_several_at_once(
    browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (first, second) = await open_request(services, world, items=("Bank", "Payroll"))
    await sign_in(browser, world["alice"])
    page = await browser.get(f"/requests/{request_id}")
    action = f"/requests/{request_id}/items/{first}/upload"
    token = form_for(page.text, action)["csrf_token"]
    assert f'id="file-{first}" name="file" type="file" multiple' in page.text

    sent = await browser.post(
        action,
        data={"csrf_token": token},
        files=[
            ("file", ("march.pdf", b"%PDF march", "application/pdf")),
            ("file", ("april.pdf", b"%PDF april", "application/pdf")),
        ],
    )
    assert sent.status_code == 303, sent.text
    shown = await browser.get(sent.headers["location"].split("#")[0])
    item = await item_row(services, first)
    assert item.status == ItemStatus.SUBMITTED
    async with services.sessions() as session:
        links = (
            (await session.execute(select(ItemDocument).order_by(col(ItemDocument.submitted_at))))
            .scalars()
            .all()
        )
    assert len(links) == 2
    for link in links:
        assert f'href="/documents/{link.document_id}"' in shown.text
    assert shown.text.index("march.pdf") < shown.text.index("april.pdf")
    assert "Files submitted for “Bank”" in shown.text
    # The progress counts the item once, whatever its number of files.
    assert 'id="request-progress">0 of 2 accepted · 1 submitted' in shown.text
    # The next file is an addition, and the second item still asks for its first.
    assert "More files for “Bank”" in shown.text and "Files for “Payroll”" in shown.text
    assert (await item_row(services, second)).status == ItemStatus.REQUESTED


async def test_the_migration_keeps_each_items_submitted_document(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    done = await tus_upload(
        http, world["alice"].auth, b"x", filename="x.pdf", request_item_id=str(item_id)
    )
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0022"))
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    item = await api_item(http, world, request_id)
    (document,) = item["documents"]
    assert document["id"] == done.headers["document-id"] and document["name"] == "x.pdf"
    assert document["submitted_by"] == str(world["alice"].id)
    async with transaction(services.sessions) as session:
        view = await request_service.get_request(session, SYSTEM, request_id)
    assert [d.name for d in view.documents[item_id]] == ["x.pdf"]
