"""Renaming and moving documents and folders through the API: what changes, what keeps its
id, who may, the clashes and loops refused, and the audit events each change leaves."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.fixtures.app import World
from tests.fixtures.documents import API, events, put
from vault.models import AuditEvent
from web.services import Services


async def folder(
    http: httpx.AsyncClient, world: World, name: str, parent: str | uuid.UUID | None = None
) -> str:
    body: dict[str, Any] = {"client_id": str(world.acme), "name": name}
    if parent:
        body["parent_id"] = str(parent)
    made = await http.post(f"{API}/folders", json=body, headers=world["sam"].auth)
    assert made.status_code == 201, made.text
    folder_id: str = made.json()["id"]
    return folder_id


def details(event: AuditEvent) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(event.details)
    facts.pop("request_id", None)
    return facts


async def patch(
    http: httpx.AsyncClient, world: World, who: str, path: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.patch(f"{API}{path}", json=body, headers=world[who].auth)


async def test_rename_and_move_a_document_keep_its_id_versions_and_links(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "draft.txt", b"one")
    await put(http, world, "sam", world.acme_folder, "draft.txt", b"two")
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    link = await http.post(
        f"{API}/documents/{doc}/links", json={"expires_at": soon}, headers=world["sam"].auth
    )
    assert link.status_code == 201, link.text
    before = (await http.get(f"{API}/documents/{doc}", headers=world["sam"].auth)).json()
    archive = await folder(http, world, "Archive")

    renamed = await patch(http, world, "sam", f"/documents/{doc}", {"name": "Final.txt"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Final.txt"
    assert renamed.json()["versions"] == before["versions"]
    moved = await patch(http, world, "sam", f"/documents/{doc}", {"folder_id": archive})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["id"], body["folder_id"], body["name"]) == (doc, archive, "Final.txt")
    assert [v["sha256"] for v in body["versions"]] == [v["sha256"] for v in before["versions"]]
    assert body == (await http.get(f"{API}/documents/{doc}", headers=world["sam"].auth)).json()

    # The old folder no longer lists it, the new one does, and the old bytes still come.
    old = (await http.get(f"{API}/folders/{world.acme_folder}", headers=world["sam"].auth)).json()
    assert [d["name"] for d in old["documents"]] == []
    new = (await http.get(f"{API}/folders/{archive}", headers=world["sam"].auth)).json()
    assert [d["id"] for d in new["documents"]] == [doc]
    first = await http.get(f"{API}/documents/{doc}/content?version=1", headers=world["sam"].auth)
    assert first.content == b"one"
    links = (await http.get(f"{API}/links", headers=world["sam"].auth)).json()["links"]
    assert [item["document_id"] for item in links] == [doc]

    [rename_event] = await events(services, "document.renamed")
    assert details(rename_event) == {
        "from": "draft.txt",
        "to": "Final.txt",
        "folder_id": str(world.acme_folder),
    }
    assert uuid.UUID(str(rename_event.document_id)) == uuid.UUID(doc)
    [move_event] = await events(services, "document.moved")
    assert details(move_event) == {
        "name": "Final.txt",
        "from": str(world.acme_folder),
        "to": archive,
        "from_path": "Tax 2026",
        "to_path": "Archive",
    }


async def test_rename_and_move_together_in_one_call(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "scan.pdf", b"%PDF")
    sub = await folder(http, world, "Receipts", world.acme_folder)
    both = await patch(
        http, world, "ada", f"/documents/{doc}", {"name": "Receipt 1.pdf", "folder_id": sub}
    )
    assert both.status_code == 200, both.text
    assert (both.json()["name"], both.json()["folder_id"]) == ("Receipt 1.pdf", sub)
    assert len(await events(services, "document.moved")) == 1
    assert len(await events(services, "document.renamed")) == 1
    # Nothing to change is no change, and writes no event.
    same = await patch(http, world, "ada", f"/documents/{doc}", {"name": "Receipt 1.pdf"})
    assert same.status_code == 200
    assert len(await events(services, "document.renamed")) == 1


async def test_a_name_taken_in_the_target_is_a_409_and_changes_nothing(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "a.txt", b"a")
    await put(http, world, "alice", world.acme_folder, "b.txt", b"b")
    other = await folder(http, world, "Other")
    await put(http, world, "sam", other, "A.TXT", b"x")

    clash = await patch(http, world, "sam", f"/documents/{doc}", {"name": "B.txt"})
    assert clash.status_code == 409, clash.text
    assert clash.headers["content-type"].startswith("application/problem+json")
    clash = await patch(http, world, "sam", f"/documents/{doc}", {"folder_id": other})
    assert clash.status_code == 409
    # A name taken by a folder counts too.
    await folder(http, world, "Notes", world.acme_folder)
    clash = await patch(http, world, "sam", f"/documents/{doc}", {"name": "notes"})
    assert clash.status_code == 409
    # The naming rules are those of an upload.
    bad = await patch(http, world, "sam", f"/documents/{doc}", {"name": "a/b.txt"})
    assert bad.status_code == 422
    assert bad.json()["rule"] == "path_separator"
    # Only the case changes: the document's own name is not a clash.
    case = await patch(http, world, "sam", f"/documents/{doc}", {"name": "A.txt"})
    assert case.status_code == 200, case.text
    got = (await http.get(f"{API}/documents/{doc}", headers=world["sam"].auth)).json()
    assert (got["name"], got["folder_id"]) == ("A.txt", str(world.acme_folder))
    assert len(await events(services, "document.moved")) == 0


async def test_folders_rename_and_move_but_never_into_themselves(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    top = await folder(http, world, "Years")
    mid = await folder(http, world, "2025", top)
    low = await folder(http, world, "Q1", mid)
    doc = await put(http, world, "alice", low, "q1.txt", b"q1")

    for target in (mid, low):
        loop = await patch(http, world, "sam", f"/folders/{mid}", {"parent_id": target})
        assert loop.status_code == 422, loop.text
        assert "into itself" in loop.json()["detail"]

    moved = await patch(http, world, "sam", f"/folders/{low}", {"parent_id": None})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["parent_id"], body["name"]) == (None, "Q1")
    assert [d["id"] for d in body["documents"]] == [doc]
    back = await patch(http, world, "sam", f"/folders/{low}", {"parent_id": top, "name": "Q2"})
    assert back.status_code == 200, back.text
    assert (back.json()["parent_id"], back.json()["name"]) == (top, "Q2")
    # Left out, the parent stays.
    kept = await patch(http, world, "sam", f"/folders/{low}", {"name": "Q3"})
    assert kept.json()["parent_id"] == top

    taken = await patch(http, world, "sam", f"/folders/{low}", {"name": "2025"})
    assert taken.status_code == 409
    taken = await patch(
        http, world, "sam", f"/folders/{mid}", {"parent_id": None, "name": "tax 2026"}
    )
    assert taken.status_code == 409

    moves = await events(services, "folder.moved")
    assert [details(e) for e in moves] == [
        {"name": "Q1", "from": mid, "to": None, "from_path": "Years › 2025", "to_path": ""},
        {"name": "Q2", "from": None, "to": top, "from_path": "", "to_path": "Years"},
    ]
    renames = await events(services, "folder.renamed")
    assert [details(e) for e in renames] == [
        {"from": "Q1", "to": "Q2", "parent_id": top},
        {"from": "Q2", "to": "Q3", "parent_id": top},
    ]
    assert all(uuid.UUID(str(e.target_id)) == uuid.UUID(low) for e in moves + renames)


async def test_another_clients_things_are_not_found_and_clients_may_not_file(
    http: httpx.AsyncClient, world: World
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "mine.txt", b"m")
    sub = await folder(http, world, "Sub")
    # Into another client's folder: that folder does not exist for the caller.
    across = await patch(
        http, world, "ada", f"/documents/{doc}", {"folder_id": str(world.globex_folder)}
    )
    assert across.status_code == 404, across.text
    across = await patch(
        http, world, "ada", f"/folders/{sub}", {"parent_id": str(world.globex_folder)}
    )
    assert across.status_code == 404
    # Someone of another client: the document and folder are not there at all.
    for who in ("bob", "gina"):
        hidden = await patch(http, world, who, f"/documents/{doc}", {"name": "x.txt"})
        assert hidden.status_code == 404
        hidden = await patch(http, world, who, f"/folders/{sub}", {"name": "x"})
        assert hidden.status_code == 404
    # A client sees them but files nothing; an auditor sees nothing.
    refused = await patch(http, world, "alice", f"/documents/{doc}", {"name": "x.txt"})
    assert refused.status_code == 403
    refused = await patch(http, world, "alice", f"/folders/{sub}", {"name": "x"})
    assert refused.status_code == 403
    unseen = await patch(http, world, "otto", f"/documents/{doc}", {"name": "x.txt"})
    assert unseen.status_code == 404
    # null is no name.
    null = await patch(http, world, "sam", f"/documents/{doc}", {"name": None})
    assert null.status_code == 422
    got = (await http.get(f"{API}/documents/{doc}", headers=world["sam"].auth)).json()
    assert got["name"] == "mine.txt"
