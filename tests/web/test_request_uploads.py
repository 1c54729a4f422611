"""Answering a document request through the resumable upload API (metadata
`request_item_id`): the finished file is submitted for its item in the transaction that
commits it; a hidden request answers 404, a closed one or an accepted item 409 before any byte
is taken. And attaching a document already in the client's folders from the request page."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of
from tests.fixtures.request_uploads import item_row, open_request, tus_upload
from tests.fixtures.signin import sign_in
from tests.fixtures.tus import assert_problem, data, headers, metadata, send
from vault import document_requests as request_service
from vault.db import transaction
from vault.models import AuditEvent, Document
from vault.policy import SYSTEM
from vault.request_tables import ItemStatus
from web.services import Services


async def submitted_events(services: Services) -> list[AuditEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "request.submitted")
        )
        return list(rows.scalars())


async def test_an_upload_naming_an_item_is_submitted_for_it(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    _request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    payload = data(70_000, "statement")
    created = await http.post(
        "/api/v1/uploads",
        headers=headers(
            auth,
            Upload_Length=str(len(payload)),
            Upload_Metadata=metadata(filename="bank.pdf", request_item_id=str(item_id)),
        ),
    )
    assert created.status_code == 201, created.text
    # Not submitted until the last byte is in.
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
    done = await send(http, created.headers["location"], auth, 0, payload)

    item = await item_row(services, item_id)
    assert item.status == ItemStatus.SUBMITTED
    assert str(item.document_id) == done.headers["document-id"]
    assert item.version == 1
    async with services.sessions() as session:
        document = await session.get(Document, item.document_id)
        assert document is not None and document.folder_id == world.acme_folder
    (event,) = await submitted_events(services)
    assert event.document_id == str(item.document_id)


async def test_several_files_for_one_item_each_submit_it(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    _request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    await tus_upload(http, auth, b"january", filename="jan.pdf", request_item_id=str(item_id))
    last = await tus_upload(
        http, auth, b"february", filename="feb.pdf", request_item_id=str(item_id)
    )

    item = await item_row(services, item_id)
    assert str(item.document_id) == last.headers["document-id"]
    assert len(await submitted_events(services)) == 2


async def test_another_clients_item_is_not_found(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    _request_id, (item_id,) = await open_request(services, world, client="acme")
    refused = await tus_upload(
        http,
        world["bob"].auth,
        b"not yours",
        expect=404,
        filename="x.pdf",
        request_item_id=str(item_id),
    )
    assert_problem(refused, 404)
    unknown = await tus_upload(
        http,
        world["alice"].auth,
        b"nothing",
        expect=404,
        filename="x.pdf",
        request_item_id=str(uuid.uuid4()),
    )
    assert_problem(unknown, 404)
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED


async def test_a_closed_request_or_an_accepted_item_takes_no_upload(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (first, second) = await open_request(services, world, items=("A", "B"))
    auth = world["alice"].auth
    done = await tus_upload(http, auth, b"a", filename="a.pdf", request_item_id=str(first))
    async with transaction(services.sessions) as session:
        await request_service.answer_item(
            session,
            SYSTEM,
            TEST_CONTEXT,
            request_id=request_id,
            item_id=first,
            status=ItemStatus.ACCEPTED,
        )
    accepted = await tus_upload(
        http, auth, b"again", expect=409, filename="a2.pdf", request_item_id=str(first)
    )
    assert_problem(accepted, 409)

    async with transaction(services.sessions) as session:
        await request_service.close_request(session, SYSTEM, TEST_CONTEXT, request_id)
    closed = await tus_upload(
        http, auth, b"late", expect=409, filename="b.pdf", request_item_id=str(second)
    )
    assert_problem(closed, 409)
    assert (await item_row(services, first)).document_id == uuid.UUID(done.headers["document-id"])
    assert (await item_row(services, second)).status == ItemStatus.REQUESTED


async def test_a_request_closed_mid_upload_keeps_the_file_unsubmitted(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    auth = world["alice"].auth
    payload = data(70_000, "late")
    created = await http.post(
        "/api/v1/uploads",
        headers=headers(
            auth,
            Upload_Length=str(len(payload)),
            Upload_Metadata=metadata(filename="late.pdf", request_item_id=str(item_id)),
        ),
    )
    assert created.status_code == 201, created.text
    async with transaction(services.sessions) as session:
        await request_service.close_request(session, SYSTEM, TEST_CONTEXT, request_id)
    done = await send(http, created.headers["location"], auth, 0, payload)

    # The bytes are safe in the folder; the closed request was not changed.
    assert done.headers["document-id"]
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
    assert await submitted_events(services) == []


# --- Attaching a document already there -------------------------------------------------------


async def test_attach_a_document_from_the_clients_folders(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    uploaded = await tus_upload(
        http, world["alice"].auth, b"%PDF old", filename="old.pdf", folder_id=str(world.acme_folder)
    )
    document_id = uploaded.headers["document-id"]
    await sign_in(http, world["alice"])
    page = await http.get(f"/requests/{request_id}")
    assert page.status_code == 200
    # Offered with its folder's path.
    assert f'value="{document_id}"' in page.text and "Tax 2026 › old.pdf" in page.text
    csrf = csrf_of(page.text)

    empty = await http.post(
        f"/requests/{request_id}/items/{item_id}/attach",
        data={"csrf_token": csrf, "document_id": ""},
    )
    assert empty.status_code == 422 and f"upload-error-{item_id}" in empty.text

    attached = await http.post(
        f"/requests/{request_id}/items/{item_id}/attach",
        data={"csrf_token": csrf, "document_id": document_id},
    )
    assert attached.status_code == 303, attached.text
    assert attached.headers["location"].endswith(f"?done=attached#item-{item_id}")
    item = await item_row(services, item_id)
    assert item.status == ItemStatus.SUBMITTED and str(item.document_id) == document_id
    (event,) = await submitted_events(services)
    assert str(event.document_id) == document_id
    shown = await http.get(attached.headers["location"])
    assert "The document was attached and submitted" in shown.text


async def test_attach_refuses_other_clients_documents_and_requests(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    foreign = await tus_upload(
        http, world["bob"].auth, b"globex", filename="g.pdf", folder_id=str(world.globex_folder)
    )
    await sign_in(http, world["alice"])
    csrf = csrf_of((await http.get(f"/requests/{request_id}")).text)
    refused = await http.post(
        f"/requests/{request_id}/items/{item_id}/attach",
        data={"csrf_token": csrf, "document_id": foreign.headers["document-id"]},
    )
    assert refused.status_code == 404

    # Globex's user cannot reach Acme's request at all.
    await sign_in(browser, world["bob"])
    bob_csrf = csrf_of((await browser.get("/account")).text)
    mine = await tus_upload(
        browser, world["bob"].auth, b"b", filename="b.pdf", folder_id=str(world.globex_folder)
    )
    hidden = await browser.post(
        f"/requests/{request_id}/items/{item_id}/attach",
        data={"csrf_token": bob_csrf, "document_id": mine.headers["document-id"]},
    )
    assert hidden.status_code == 404
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
