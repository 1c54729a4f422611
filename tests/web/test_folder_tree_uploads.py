"""Uploading a folder through the resumable upload API: `relative_path` recreates the
dropped folder's tree under the target folder (each missing folder created and audited once,
existing ones reused); absolute paths, `..` and refused names answer 400 problem+json
before anything is created."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.request_uploads import tus_upload
from tests.fixtures.tus import assert_problem
from vault.models import AuditEvent, Document, Folder
from web.services import Services


async def folders_named(services: Services) -> dict[str, Folder]:
    async with services.sessions() as session:
        rows = await session.execute(select(Folder))
        return {f.name: f for f in rows.scalars()}


async def created_events(services: Services) -> list[AuditEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "folder.created")
        )
        return list(rows.scalars())


async def test_a_folders_tree_is_recreated_under_the_target(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["sam"].auth
    before = len(await created_events(services))
    first = await tus_upload(
        http,
        auth,
        b"receipt a",
        filename="a.pdf",
        folder_id=str(world.acme_folder),
        relative_path="2025/receipts/a.pdf",
    )
    second = await tus_upload(
        http,
        auth,
        b"receipt b",
        filename="b.pdf",
        folder_id=str(world.acme_folder),
        relative_path="2025/receipts/b.pdf",
    )
    top = await tus_upload(
        http,
        auth,
        b"summary",
        filename="summary.pdf",
        folder_id=str(world.acme_folder),
        relative_path="2025/summary.pdf",
    )

    folders = await folders_named(services)
    year, receipts = folders["2025"], folders["receipts"]
    assert year.parent_id == world.acme_folder and receipts.parent_id == year.id
    # Created once each, audited once each.
    assert len(await created_events(services)) == before + 2
    async with services.sessions() as session:
        for answer, folder in ((first, receipts), (second, receipts), (top, year)):
            document = await session.get(Document, uuid.UUID(answer.headers["document-id"]))
            assert document is not None and document.folder_id == folder.id


@pytest.mark.parametrize(
    "path",
    [
        "../escape.pdf",
        "2025/../../escape.pdf",
        "/etc/escape.pdf",
        "\\\\server\\share\\escape.pdf",
        "C:/escape.pdf",
        "./escape.pdf",
        "2025//escape.pdf",
        "CON/escape.pdf",
        "bad\x07name/escape.pdf",
        "dot./escape.pdf",
    ],
)
async def test_hostile_relative_paths_are_refused(
    http: httpx.AsyncClient, world: World, services: Services, path: str
) -> None:
    before = set(await folders_named(services))
    refused = await tus_upload(
        http,
        world["sam"].auth,
        b"x",
        expect=400,
        filename="escape.pdf",
        folder_id=str(world.acme_folder),
        relative_path=path,
    )
    problem = assert_problem(refused, 400)
    assert problem["title"] == "Bad request"
    assert "relative path" in problem["detail"] or "folder name" in problem["detail"]
    assert set(await folders_named(services)) == before


async def test_a_client_cannot_create_folders_by_uploading_one(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    refused = await tus_upload(
        http,
        world["alice"].auth,
        b"x",
        expect=403,
        filename="a.pdf",
        folder_id=str(world.acme_folder),
        relative_path="new/a.pdf",
    )
    assert_problem(refused, 403)
    assert "new" not in await folders_named(services)
    # A file at the top of the dropped folder needs no new folder... only the chosen one.
    ok = await tus_upload(
        http,
        world["alice"].auth,
        b"x",
        filename="a.pdf",
        folder_id=str(world.acme_folder),
        relative_path="a.pdf",
    )
    assert ok.headers["document-id"]


# --- A dropped tree's empty folders ---------------------------------------------------------


def problem_of(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_empty_folder_of_a_tree_is_made_by_its_path(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["sam"].auth
    url = f"/api/v1/folders/{world.acme_folder}/paths"
    before = len(await created_events(services))
    # A file's upload made 2025; its empty sibling is made by its path, reusing 2025.
    await tus_upload(
        http,
        auth,
        b"summary",
        filename="summary.pdf",
        folder_id=str(world.acme_folder),
        relative_path="2025/summary.pdf",
    )
    made = await http.post(url, headers=auth, json={"path": "2025/empty/deeper"})
    assert made.status_code == 200, made.text
    folders = await folders_named(services)
    assert made.json()["id"] == str(folders["deeper"].id)
    assert folders["deeper"].parent_ref == str(folders["empty"].id)
    assert folders["empty"].parent_ref == str(folders["2025"].id)
    assert len(await created_events(services)) == before + 3
    # Made again, nothing new: the same folder answers.
    again = await http.post(url, headers=auth, json={"path": "2025/empty/deeper"})
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    assert len(await created_events(services)) == before + 3
    listed = await http.get(f"/api/v1/folders/{folders['empty'].id}", headers=auth)
    assert [f["name"] for f in listed.json()["folders"]] == ["deeper"]


@pytest.mark.parametrize("path", ["../escape", "/abs", "a//b", "a/.", "a/con:"])
async def test_a_hostile_folder_path_is_refused(
    http: httpx.AsyncClient, world: World, services: Services, path: str
) -> None:
    before = set(await folders_named(services))
    refused = await http.post(
        f"/api/v1/folders/{world.acme_folder}/paths", headers=world["sam"].auth, json={"path": path}
    )
    problem_of(refused, 400)
    assert set(await folders_named(services)) == before


async def test_a_client_makes_no_folder_by_path_nor_in_another_clients_folder(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    mine = await http.post(
        f"/api/v1/folders/{world.acme_folder}/paths",
        headers=world["alice"].auth,
        json={"path": "new"},
    )
    problem_of(mine, 403)
    theirs = await http.post(
        f"/api/v1/folders/{world.globex_folder}/paths",
        headers=world["alice"].auth,
        json={"path": "new"},
    )
    problem_of(theirs, 404)
    assert "new" not in await folders_named(services)
