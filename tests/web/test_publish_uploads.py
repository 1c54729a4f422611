"""Publishing with the page's script: the form's fields are posted first (`prepare`, answered
in JSON with the first client's folder or the errors), the file goes up by resumable upload
into that folder, and the form is then posted naming the uploaded document; every further
client gets its copy as with a plain form. Only the publisher's own upload is accepted."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.pages import csrf_of
from tests.fixtures.request_uploads import tus_upload
from tests.fixtures.signin import sign_in
from vault.models import AuditEvent, Document, Folder
from web.services import Services

REPORT = b"%PDF-1.7 annual report " + bytes(range(256)) * 400


def fields(token: str, clients: list[str], **more: str | list[str]) -> dict[str, str | list[str]]:
    return {"csrf_token": token, "clients": clients, "folder": "Reports", "message": "", **more}


async def post(http: httpx.AsyncClient, data: dict[str, str | list[str]]) -> httpx.Response:
    # What a browser sends for the form with its file input disabled: fields only, as
    # multipart/form-data (httpx needs a file part for that: an empty, unnamed one).
    return await http.post(
        "/publish", data=data, files=[("ignored", ("", b"", "application/octet-stream"))]
    )


async def reports_documents(services: Services, client_id: uuid.UUID) -> list[Document]:
    async with services.sessions() as session:
        folder = (
            await session.execute(
                select(Folder).where(Folder.client_id == client_id, Folder.name == "Reports")
            )
        ).scalar_one_or_none()
        if folder is None:
            return []
        rows = await session.execute(select(Document).where(Document.folder_id == folder.id))
        return list(rows.scalars())


async def test_prepare_upload_then_publish_to_two_clients(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    clients = [str(world.acme), str(world.globex)]

    refused = await post(http, fields(token, [], prepare="1"))
    assert refused.status_code == 422
    assert refused.json() == {"errors": {"clients": "empty"}}

    prepared = await post(http, fields(token, clients, prepare="1"))
    assert prepared.status_code == 200, prepared.text
    folder_id = prepared.json()["folder_id"]
    uploaded = await tus_upload(
        http,
        world["ada"].auth,
        REPORT,
        filename="annual.pdf",
        folder_id=folder_id,
        message="Your annual report.",
    )
    document_id = uploaded.headers["document-id"]
    # The note is recorded with the first client's version, as a plain form's would be.
    async with services.sessions() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "document.created", AuditEvent.document_id == document_id
                )
            )
        ).scalar_one()
    assert json.loads(event.details)["message"] == "Your annual report."

    page = await post(http, fields(token, clients, uploaded=[document_id]))
    assert page.status_code == 200, page.text
    acme = await reports_documents(services, world.acme)
    globex = await reports_documents(services, world.globex)
    assert [d.name for d in acme] == ["annual.pdf"] and str(acme[0].id) == document_id
    assert [d.name for d in globex] == ["annual.pdf"]
    download = await http.get(
        f"/api/v1/documents/{globex[0].id}/content", headers=world["ada"].auth
    )
    assert download.content == REPORT


async def test_only_the_publishers_own_upload_in_that_folder_is_published(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    prepared = await post(http, fields(token, [str(world.acme)], prepare="1"))
    folder_id = prepared.json()["folder_id"]
    # Alice (Acme's client user) put a file there; sam cannot publish it as his.
    theirs = await tus_upload(
        http, world["alice"].auth, b"not sam's", filename="theirs.pdf", folder_id=folder_id
    )
    refused = await post(
        http, fields(token, [str(world.acme)], uploaded=[theirs.headers["document-id"]])
    )
    assert refused.status_code == 404
    # Nor one of his own elsewhere.
    elsewhere = await tus_upload(
        http, world["sam"].auth, b"x", filename="x.pdf", folder_id=str(world.acme_folder)
    )
    refused = await post(
        http, fields(token, [str(world.acme)], uploaded=[elsewhere.headers["document-id"]])
    )
    assert refused.status_code == 404
    nothing = await post(http, fields(token, [str(world.acme)]))
    assert nothing.status_code == 422 and "publish-files-error" in nothing.text


async def test_only_staff_send_a_message_with_an_upload(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    refused = await tus_upload(
        http,
        world["alice"].auth,
        b"x",
        expect=400,
        filename="x.pdf",
        folder_id=str(world.acme_folder),
        message="Click here to reset your password",
    )
    assert "message" in refused.text
    assert await reports_documents(services, world.acme) == []
