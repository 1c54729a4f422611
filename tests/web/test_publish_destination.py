"""The destination of the publish form, without JavaScript: the folder is a path picked from
the chosen clients' combined tree (a select of indented paths) plus an optional new folder;
the path is walked in each client and created where missing. Only the folders of clients the
caller may publish to are offered."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import csrf_of, parse, table_rows
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault.db import transaction
from vault.models import ROOT_REF, AuditEvent, Document, Folder
from vault.policy import SYSTEM
from web.services import Services


async def add_folder(
    services: Services, client_id: uuid.UUID, parent_id: uuid.UUID | None, name: str
) -> uuid.UUID:
    async with transaction(services.sessions) as session:
        folder = await folder_service.create_folder(
            session, SYSTEM, TEST_CONTEXT, client_id=client_id, parent_id=parent_id, name=name
        )
        return folder.id


async def publish(
    http: httpx.AsyncClient,
    token: str,
    *,
    clients: list[str],
    folder: str,
    new_folder: str = "",
    files: list[tuple[str, bytes]] | None = None,
) -> httpx.Response:
    data: dict[str, str | list[str]] = {
        "csrf_token": token,
        "clients": clients,
        "folder": folder,
        "new_folder": new_folder,
        "message": "",
    }
    return await http.post(
        "/publish",
        data=data,
        files=[("files", (name, body, "application/pdf")) for name, body in files or []]
        or [("files", ("", b"", "application/octet-stream"))],
    )


def folder_options(page: str) -> dict[str, tuple[str, set[str]]]:
    """The folder select's options: value -> (shown text, the clients it exists for)."""
    select_html = page[page.index('id="publish-folder"') :]
    select_html = select_html[: select_html.index("</select>")]
    found = {}
    for value, clients, text in re.findall(
        r'<option value="([^"]*)"(?: data-clients="([^"]*)")?[^>]*>([^<]*)</option>', select_html
    ):
        found[value] = (text, set(clients.split()))
    return found


async def path_of(services: Services, folder_id: uuid.UUID) -> list[str]:
    async with transaction(services.sessions) as session:
        names = []
        current = await session.get(Folder, folder_id)
        while current is not None:
            names.append(current.name)
            current = await session.get(Folder, current.parent_id) if current.parent_id else None
        return list(reversed(names))


async def folders_created(services: Services) -> dict[str, int]:
    """How many `folder.created` events each client has."""
    async with transaction(services.sessions) as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent).where(col(AuditEvent.action) == "folder.created")
                )
            )
            .scalars()
            .all()
        )
    counted: dict[str, int] = {}
    for event in events:
        counted[str(event.client_id)] = counted.get(str(event.client_id), 0) + 1
    return counted


async def test_the_tree_merges_the_clients_folders_by_path(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    reports = await add_folder(services, world.acme, None, "Reports")
    await add_folder(services, world.acme, reports, "2026")
    globex_reports = await add_folder(services, world.globex, None, "reports")
    await add_folder(services, world.globex, globex_reports, "Quarterly")
    await sign_in(http, world["ada"], second_factor=True)
    page = (await http.get("/publish")).text
    options = folder_options(page)
    # Both clients' "Reports" are one folder of the tree (names match as the vault matches
    # them), listed under one spelling; children nest under it, indented.
    assert list(options) == [
        "",
        "Reports",
        "Reports/2026",
        "Reports/Quarterly",
        "Tax 2026",
    ]
    assert options["Reports"][1] == {str(world.acme), str(world.globex)}
    assert options["Reports/2026"][1] == {str(world.acme)}
    assert options["Reports/Quarterly"][1] == {str(world.globex)}
    assert options["Reports/2026"][0] == "\u00a0" * 8 + "2026"
    assert options["Reports"][0] == "\u00a0" * 4 + "Reports"
    # The default destination is the existing "Reports".
    assert re.search(r'<option value="Reports" data-clients="[^"]*" selected>', page)


async def test_only_folders_of_clients_the_caller_may_publish_to_are_offered(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await add_folder(services, world.acme, None, "Acme letters")
    await add_folder(services, world.globex, None, "Globex secrets")
    await sign_in(http, world["sam"], second_factor=True)
    page = (await http.get("/publish")).text
    options = folder_options(page)
    assert "Acme letters" in options and "Tax 2026" in options
    assert "Globex secrets" not in page and str(world.globex) not in page
    assert all(clients <= {str(world.acme)} for _, clients in options.values())
    # "Reports" exists nowhere yet: it is offered as the default, to be created.
    assert options["Reports"][1] == set()


async def test_a_nested_path_is_created_where_missing_in_each_client(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    reports = await add_folder(services, world.acme, None, "Reports")
    year = await add_folder(services, world.acme, reports, "2026")
    await sign_in(http, world["ada"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    before = await folders_created(services)
    done = await publish(
        http,
        token,
        clients=[str(world.acme), str(world.globex)],
        folder="Reports/2026",
        new_folder="Q4",
        files=[("q4.pdf", b"fourth quarter")],
    )
    assert done.status_code == 200, done.text
    rows = table_rows(done.text, "publish-results")
    assert len(rows) == 2 and all("Published" in r for r in rows)
    assert "Reports › 2026 › Q4" in done.text
    async with transaction(services.sessions) as session:
        documents = (await session.execute(select(Document))).scalars().all()
        acme_year = await session.get(Folder, year)
    assert {d.client_id for d in documents} == {world.acme, world.globex}
    for document in documents:
        assert await path_of(services, document.folder_id) == ["Reports", "2026", "Q4"]
    acme_doc = next(d for d in documents if d.client_id == world.acme)
    # Acme's existing folders were used: only "Q4" is new there.
    async with transaction(services.sessions) as session:
        q4 = await session.get(Folder, acme_doc.folder_id)
    assert q4 is not None and acme_year is not None and q4.parent_id == acme_year.id
    # Created and audited: Q4 for Acme; Reports, 2026 and Q4 for Globex.
    created = await folders_created(services)
    assert {client: created[client] - before.get(client, 0) for client in created} == {
        str(world.acme): 1,
        str(world.globex): 3,
    }


async def test_publishing_at_the_top_level_needs_a_new_folder_name(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    empty = await publish(
        http, token, clients=[str(world.acme)], folder="", files=[("a.pdf", b"a")]
    )
    assert empty.status_code == 422
    assert "Choose a folder, or name a new one." in parse(empty.text).ids["publish-folder-error"]
    bad_new = await publish(
        http,
        token,
        clients=[str(world.acme)],
        folder="Tax 2026",
        new_folder="a/b",
        files=[("a.pdf", b"a")],
    )
    assert bad_new.status_code == 422 and "publish-new-folder-error" in parse(bad_new.text).ids
    bad_path = await publish(
        http, token, clients=[str(world.acme)], folder="Tax 2026/CON", files=[("a.pdf", b"a")]
    )
    assert bad_path.status_code == 422 and "publish-folder-error" in parse(bad_path.text).ids
    too_deep = await publish(
        http, token, clients=[str(world.acme)], folder="/".join("d" * 17), files=[("a.pdf", b"a")]
    )
    assert too_deep.status_code == 422
    top = await publish(
        http,
        token,
        clients=[str(world.acme)],
        folder="",
        new_folder="Letters",
        files=[("a.pdf", b"a")],
    )
    assert top.status_code == 200, top.text
    async with transaction(services.sessions) as session:
        [document] = (await session.execute(select(Document))).scalars().all()
        folder = await session.get(Folder, document.folder_id)
    assert folder is not None and folder.name == "Letters" and folder.parent_ref == ROOT_REF
    # Nothing was created by the refused attempts.
    async with transaction(services.sessions) as session:
        names = (await session.execute(select(Folder.name))).scalars().all()
    assert sorted(names) == ["Letters", "Tax 2026", "Tax 2026"]


async def test_a_refused_form_keeps_the_picked_folder(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    refused = await publish(
        http, token, clients=[], folder="tax 2026/Receipts", files=[("a.pdf", b"a")]
    )
    assert refused.status_code == 422
    options = folder_options(refused.text)
    # The path is put back in the tree's spelling, its missing part offered as new.
    assert "Tax 2026/Receipts" in options and options["Tax 2026/Receipts"][1] == set()
    assert re.search(r'<option value="Tax 2026/Receipts" data-clients=""\s*selected>', refused.text)


async def test_another_clients_id_is_refused_with_its_folders_unseen(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await add_folder(services, world.globex, None, "Globex only")
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get("/publish")).text)
    refused = await publish(
        http,
        token,
        clients=[str(world.globex)],
        folder="Globex only",
        files=[("x.pdf", b"x")],
    )
    assert refused.status_code == 422 and "clients-error" in parse(refused.text).ids
    # The typed path comes back as typed, known to no client: Globex's tree stays unseen.
    options = folder_options(refused.text)
    assert all(clients <= {str(world.acme)} for _, clients in options.values())
    assert options["Globex only"][1] == set()
    async with transaction(services.sessions) as session:
        assert (await session.execute(select(Document))).first() is None
        folders = (
            await session.execute(select(Folder).where(col(Folder.client_id) == world.globex))
        ).scalars()
        assert sorted(f.name for f in folders) == ["Globex only", "Tax 2026"]
