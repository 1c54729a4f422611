"""Staff publishing through the browser form, without JavaScript: one report to many clients,
each getting its own re-encrypted copy, audited with the message; nobody else gets it."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, parse, table_rows
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault import resources
from vault.db import transaction
from vault.models import ROOT_REF, AuditEvent, Document, Folder, Version
from vault.policy import SYSTEM
from web.services import Services

REPORT = b"%PDF-1.7 annual report " + bytes(range(256)) * 4000  # ~1 MB, several segments


async def publish(
    http: httpx.AsyncClient,
    token: str,
    *,
    clients: list[str],
    files: list[tuple[str, bytes]],
    folder: str = "Reports",
    message: str = "",
    all_clients: bool = False,
) -> httpx.Response:
    # The field order matters: token, clients, folder, message, then the files.
    data: dict[str, str | list[str]] = {"csrf_token": token}
    if all_clients:
        data["all"] = "1"
    data |= {"clients": clients, "folder": folder, "message": message}
    return await http.post(
        "/publish",
        data=data,
        # A browser sends an empty file input as a part with no name and no bytes.
        files=[("files", (name, body, "application/pdf")) for name, body in files]
        or [("files", ("", b"", "application/octet-stream"))],
    )


async def test_one_report_to_two_clients_with_a_message(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        initech = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Initech")
    await sign_in(http, world["ada"], second_factor=True)
    page = await http.get("/publish")
    assert page.status_code == 200
    assert all(str(c) in page.text for c in (world.acme, world.globex, initech.id))
    message = "Your annual report is ready.\nCall us with any questions."
    done = await publish(
        http,
        csrf_of(page.text),
        clients=[str(world.acme), str(world.globex)],
        files=[("Annual report 2026.pdf", REPORT)],
        message=message,
    )
    assert done.status_code == 200, done.text
    rows = table_rows(done.text, "publish-results")
    assert len(rows) == 2 and all("Published" in r for r in rows)

    async with transaction(services.sessions) as session:
        documents = (
            (await session.execute(select(Document).order_by(col(Document.client_id))))
            .scalars()
            .all()
        )
        assert {d.client_id for d in documents} == {world.acme, world.globex}  # not Initech
        for document in documents:
            folder = await session.get(Folder, document.folder_id)
            assert folder is not None and folder.name == "Reports"
            assert folder.parent_ref == ROOT_REF and folder.client_id == document.client_id
            assert document.name == "Annual report 2026.pdf" and document.current_version == 1
        versions = (await session.execute(select(Version))).scalars().all()
        events = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "document.created")
                )
            )
            .scalars()
            .all()
        )
        initech_folders = (
            await session.execute(select(Folder).where(Folder.client_id == initech.id))
        ).all()
    assert initech_folders == []
    # Each copy is its own object under its own data key, with the same plaintext.
    assert len(versions) == 2
    assert len({v.storage_key for v in versions}) == 2
    assert versions[0].wrapped_dek != versions[1].wrapped_dek
    assert {v.sha256 for v in versions} == {hashlib.sha256(REPORT).hexdigest()}
    for document in documents:
        content = await http.get(
            f"/api/v1/documents/{document.id}/content", headers=world["ada"].auth
        )
        assert content.status_code == 200 and content.content == REPORT
    # Each client's upload is audited with the message: that is what its members' email shows.
    by_client = {e.client_id: json.loads(e.details) for e in events}
    assert set(by_client) == {str(world.acme), str(world.globex)}
    assert all(d["message"] == message for d in by_client.values())


async def test_all_my_clients_means_the_callers_own_clients(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        firm = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Resources")
        await resources.set_shared(session, SYSTEM, TEST_CONTEXT, firm.id, shared=True)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get("/publish")
    assert str(world.acme) in page.text and str(world.globex) not in page.text
    done = await publish(
        http,
        csrf_of(page.text),
        clients=[],
        all_clients=True,
        files=[("a.pdf", b"one"), ("b.pdf", b"two")],
    )
    assert done.status_code == 200, done.text
    async with transaction(services.sessions) as session:
        documents = (await session.execute(select(Document))).scalars().all()
    assert sorted(d.name for d in documents) == ["a.pdf", "b.pdf"]
    assert {d.client_id for d in documents} == {world.acme}


async def test_another_clients_id_is_refused_before_anything_is_stored(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    refused = await publish(
        http, token, clients=[str(world.acme), str(world.globex)], files=[("x.pdf", b"x")]
    )
    assert refused.status_code == 422 and "clients-error" in parse(refused.text).ids
    nothing = await publish(http, token, clients=[], files=[("x.pdf", b"x")])
    assert nothing.status_code == 422 and "clients-error" in parse(nothing.text).ids
    too_long = await publish(
        http, token, clients=[str(world.acme)], files=[("x.pdf", b"x")], message="m" * 2001
    )
    assert too_long.status_code == 422
    assert "publish-message-error" in parse(too_long.text).ids
    no_file = await publish(http, token, clients=[str(world.acme)], files=[])
    assert no_file.status_code == 422 and "publish-files-error" in parse(no_file.text).ids
    async with transaction(services.sessions) as session:
        assert (await session.execute(select(Document))).first() is None
        assert (
            await session.execute(select(Folder).where(Folder.name == "Reports"))
        ).first() is None


async def test_a_client_user_cannot_reach_publishing(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get("/publish")
    assert page.status_code == 404
    assert 'href="/publish"' not in (await http.get("/")).text
    token = csrf_of((await http.get("/account")).text)
    sent = await publish(http, token, clients=[str(world.acme)], files=[("x.pdf", b"x")])
    assert sent.status_code == 404
    async with transaction(services.sessions) as session:
        assert (await session.execute(select(Document))).first() is None
    assert re.search(r"Not found", sent.text)
