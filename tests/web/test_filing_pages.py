"""Renaming, moving and the folder listing's selection, driven as a browser without JavaScript
would: forms posted with the CSRF token, answered by a redirect with a notice or by the page
again with the reason; folder rows with their item count, and file-type icons."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.fixtures.app import World
from tests.fixtures.browse import PERSIAN, row_names
from tests.fixtures.documents import API, events, put
from tests.fixtures.pages import alert_text, csrf_of
from tests.fixtures.signin import sign_in
from web.services import Services

EMOJI = re.compile("[\U0001f300-\U0001faff]")


async def make_folder(
    http: httpx.AsyncClient, world: World, name: str, parent: uuid.UUID | str | None = None
) -> str:
    body: dict[str, Any] = {"client_id": str(world.acme), "name": name}
    if parent:
        body["parent_id"] = str(parent)
    response = await http.post(f"{API}/folders", json=body, headers=world["sam"].auth)
    assert response.status_code == 201, response.text
    folder_id: str = response.json()["id"]
    return folder_id


async def staff_page(http: httpx.AsyncClient, world: World, path: str) -> tuple[str, str]:
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(path)
    assert page.status_code == 200, page.text
    return page.text, csrf_of(page.text)


async def document_json(http: httpx.AsyncClient, world: World, doc: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        await http.get(f"{API}/documents/{doc}", headers=world["sam"].auth)
    ).json()
    return found


async def select(
    http: httpx.AsyncClient,
    folder: uuid.UUID | str,
    token: str,
    action: str,
    *ids: str,
    **extra: str,
) -> httpx.Response:
    """Post the folder's selection form: `document_id` once per document, as a browser does."""
    pairs = [("csrf_token", token), ("action", action), *(("document_id", i) for i in ids)]
    return await http.post(
        f"/folders/{folder}/selection",
        content=urlencode([*pairs, *extra.items()]),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Sec-Fetch-Site": "same-origin",
        },
    )


# --- one document ---------------------------------------------------------------------------


async def test_the_document_page_renames_and_moves_it(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "draft.txt", b"one")
    await put(http, world, "alice", world.acme_folder, "draft.txt", b"two")
    sub = await make_folder(http, world, "Receipts", world.acme_folder)
    text, token = await staff_page(http, world, f"/documents/{doc}")
    assert f'action="/documents/{doc}/rename"' in text
    # The folders to move to, indented under their parents, the current one chosen.
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]*)</option>', text)
    assert [(value, name) for value, _, name in options] == [
        (str(world.acme_folder), "Tax 2026"),
        (sub, "\u00a0\u00a0\u00a0Receipts"),
    ]
    assert options[0][1] == " selected"

    renamed = await http.post(
        f"/documents/{doc}/rename", data={"csrf_token": token, "name": "Final.txt"}
    )
    assert renamed.status_code == 303
    assert renamed.headers["location"] == f"/documents/{doc}?done=renamed"
    shown = await http.get(renamed.headers["location"])
    assert "The document was renamed." in shown.text
    assert "<bdi>Final.txt</bdi>" in shown.text

    moved = await http.post(f"/documents/{doc}/move", data={"csrf_token": token, "folder_id": sub})
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/documents/{doc}?done=moved"
    after = await document_json(http, world, doc)
    assert (after["folder_id"], after["name"], len(after["versions"])) == (sub, "Final.txt", 2)
    assert len(await events(services, "document.renamed")) == 1
    assert len(await events(services, "document.moved")) == 1


async def test_a_refused_rename_shows_the_page_again_with_the_reason(
    http: httpx.AsyncClient, world: World
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "a.txt", b"a")
    await put(http, world, "alice", world.acme_folder, PERSIAN, b"%PDF")
    _, token = await staff_page(http, world, f"/documents/{doc}")

    taken = await http.post(f"/documents/{doc}/rename", data={"csrf_token": token, "name": PERSIAN})
    assert taken.status_code == 409
    assert PERSIAN in alert_text(taken.text)
    assert 'aria-describedby="rename-error"' in taken.text
    bad = await http.post(f"/documents/{doc}/rename", data={"csrf_token": token, "name": "a/b"})
    assert bad.status_code == 422
    assert "That name cannot be used" in alert_text(bad.text)
    assert 'value="a/b"' in bad.text  # what was typed stays in the field
    assert (await document_json(http, world, doc))["name"] == "a.txt"


async def test_clients_see_no_filing_forms_and_cannot_post_them(
    http: httpx.AsyncClient, world: World
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "a.txt", b"a")
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    assert "/rename" not in page.text and "/move" not in page.text
    folder = await http.get(f"/folders/{world.acme_folder}")
    assert "/selection" in folder.text  # a client may still download a selection
    assert 'value="trash"' not in folder.text and 'value="move"' not in folder.text
    assert "Rename or move this folder" not in folder.text
    token = csrf_of(page.text)
    refused = await http.post(f"/documents/{doc}/rename", data={"csrf_token": token, "name": "b"})
    assert refused.status_code == 403
    # Without the CSRF token, even staff are refused.
    await sign_in(http, world["sam"], second_factor=True)
    forged = await http.post(f"/documents/{doc}/rename", data={"name": "b.txt"})
    assert forged.status_code == 403
    assert (await document_json(http, world, doc))["name"] == "a.txt"


# --- folders --------------------------------------------------------------------------------


async def test_a_folder_renames_and_moves_from_its_own_page(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    top = await make_folder(http, world, "Years")
    mid = await make_folder(http, world, "2025", top)
    low = await make_folder(http, world, "Q1", mid)
    text, token = await staff_page(http, world, f"/folders/{mid}")
    assert "Rename or move this folder" in text
    # It cannot go into itself: neither it nor its sub-folder is offered.
    move_form = text.split(f'action="/folders/{mid}/move"', 1)[1].split("</form>", 1)[0]
    assert f'value="{mid}"' not in move_form and f'value="{low}"' not in move_form
    assert f'value="{top}" selected' in move_form

    into = await http.post(f"/folders/{mid}/move", data={"csrf_token": token, "parent_id": low})
    assert into.status_code == 422
    assert "cannot be moved into itself" in alert_text(into.text)
    renamed = await http.post(f"/folders/{mid}/rename", data={"csrf_token": token, "name": "2026"})
    assert renamed.headers["location"] == f"/folders/{mid}?done=renamed"
    assert "The folder was renamed." in (await http.get(renamed.headers["location"])).text
    moved = await http.post(f"/folders/{mid}/move", data={"csrf_token": token, "parent_id": ""})
    assert moved.headers["location"] == f"/folders/{mid}?done=moved"
    root = await http.get(f"/clients/{world.acme}")
    assert row_names(root.text) == ["2026", "Tax 2026", "Years"]
    taken = await http.post(
        f"/folders/{mid}/rename", data={"csrf_token": token, "name": "TAX 2026"}
    )
    assert taken.status_code == 409
    assert "“TAX 2026” is already there" in alert_text(taken.text)
    [moved_event] = await events(services, "folder.moved")
    assert json.loads(moved_event.details)["from_path"] == "Years"


@contextmanager
def counted() -> Iterator[list[str]]:
    """The statements the calling task sends (the app runs in it through ASGITransport);
    the app's background workers, in tasks of their own, are not counted."""
    statements: list[str] = []
    task = asyncio.current_task()

    def note(*args: Any) -> None:
        if asyncio.current_task() is task:
            statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", note)


async def test_folder_rows_show_their_item_count_and_last_change_in_one_query(
    http: httpx.AsyncClient, world: World
) -> None:
    full = await make_folder(http, world, "Full", world.acme_folder)
    await make_folder(http, world, "Inner", full)
    await put(http, world, "alice", full, "one.txt", b"1")
    await put(http, world, "alice", full, "two.txt", b"2")
    await make_folder(http, world, "Nothing", world.acme_folder)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    rows = [
        re.findall(r"<td[^>]*>([^<]*)</td>", row)
        for row in re.findall(r'<tr class="browse-folder">(.*?)</tr>', page.text, re.S)
    ]
    assert rows[0][:1] == ["3 items"] and "2026" in rows[0][1]
    assert rows[1][:2] == ["Empty", ""]

    with counted() as few:
        await http.get(f"/folders/{world.acme_folder}")
    for n in range(6):
        sub = await make_folder(http, world, f"More {n}", world.acme_folder)
        await put(http, world, "alice", sub, "x.txt", b"x")
    with counted() as many:
        again = await http.get(f"/folders/{world.acme_folder}")
    assert again.text.count("1 item<") == 6
    assert few and any("count(*) AS items" in s for s in many)
    assert len(many) == len(few), "a query per folder row"


async def test_icons_are_svg_not_emoji(http: httpx.AsyncClient, world: World) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "report.pdf", b"%PDF-1.4")
    await put(http, world, "alice", world.acme_folder, "sheet.xlsx", b"PK")
    await put(http, world, "alice", world.acme_folder, "notes.txt", b"n")
    await make_folder(http, world, "Receipts", world.acme_folder)
    await sign_in(http, world["sam"], second_factor=True)
    listing = (await http.get(f"/folders/{world.acme_folder}")).text
    for kind in ("folder", "pdf", "spreadsheet", "text"):
        assert f'<svg class="ficon ficon--{kind}" aria-hidden="true"' in listing
    search = (await http.get(f"/clients/{world.acme}/search", params={"q": "e"})).text
    assert "ficon--folder" in search and "ficon--pdf" in search
    document = (await http.get(f"/documents/{doc}")).text
    assert "ficon--pdf" in document
    token = csrf_of(document)
    await http.post(f"/documents/{doc}/trash", data={"csrf_token": token})
    trash = (await http.get("/trash")).text
    assert "ficon--pdf" in trash
    for page in (listing, search, document, trash):
        assert not EMOJI.search(page)


# --- the selection --------------------------------------------------------------------------


async def test_the_selection_downloads_as_one_zip_of_just_those_documents(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    a = await put(http, world, "alice", world.acme_folder, "a.txt", b"alpha")
    b = await put(http, world, "alice", world.acme_folder, PERSIAN, b"%PDF persian")
    await put(http, world, "alice", world.acme_folder, "c.txt", b"not asked for")
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    token = csrf_of(page.text)
    assert 'name="document_id"' in page.text and "Download selected (zip)" in page.text

    got = await select(http, world.acme_folder, token, "zip", a, b)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    assert sorted(archive.namelist()) == sorted(["a.txt", PERSIAN])
    assert archive.read("a.txt") == b"alpha"
    zipped = [e for e in await events(services, "document.downloaded") if '"zip"' in e.details]
    assert sorted(str(uuid.UUID(str(e.document_id))) for e in zipped) == sorted([a, b])
    assert all(json.loads(e.details)["folder_id"] == str(world.acme_folder) for e in zipped)

    # A document of another folder is not part of this one's selection: nothing goes out.
    elsewhere = await put(http, world, "sam", await make_folder(http, world, "Other"), "o", b"o")
    stray = await select(http, world.acme_folder, token, "zip", a, elsewhere)
    assert stray.status_code == 404
    assert len(await events(services, "document.downloaded")) == 2


async def test_moving_a_selection_is_all_or_nothing(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    a = await put(http, world, "alice", world.acme_folder, "a.txt", b"a")
    b = await put(http, world, "alice", world.acme_folder, "b.txt", b"b")
    target = await make_folder(http, world, "Target")
    await put(http, world, "sam", target, "B.TXT", b"in the way")
    page, token = await staff_page(http, world, f"/folders/{world.acme_folder}")
    assert "Move selected to…" in page and "Move selected to trash" in page

    clash = await select(http, world.acme_folder, token, "move", a, b, folder_id=target)
    assert clash.status_code == 409
    assert "“b.txt” is already there" in alert_text(clash.text)
    assert row_names(clash.text) == ["a.txt", "b.txt"]
    assert (await document_json(http, world, a))["folder_id"] == str(world.acme_folder)
    assert await events(services, "document.moved") == []

    nothing = await select(http, world.acme_folder, token, "move", folder_id=target)
    assert nothing.status_code == 422
    assert "Select at least one document first." in alert_text(nothing.text)

    other = await make_folder(http, world, "Clear")
    moved = await select(http, world.acme_folder, token, "move", a, b, folder_id=other)
    assert moved.status_code == 303
    shown = await http.get(moved.headers["location"])
    assert "2 documents were moved." in shown.text
    assert row_names(shown.text) == []
    assert len(await events(services, "document.moved")) == 2


async def test_trashing_a_selection_is_all_or_nothing(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    a = await put(http, world, "alice", world.acme_folder, "a.txt", b"a")
    b = await put(http, world, "alice", world.acme_folder, "b.txt", b"b")
    hidden = await put(http, world, "bob", world.globex_folder, "theirs.txt", b"t")
    _, token = await staff_page(http, world, f"/folders/{world.acme_folder}")

    # One of them is not the caller's to see: the whole batch is refused.
    refused = await select(http, world.acme_folder, token, "trash", a, hidden)
    assert refused.status_code == 404
    assert await events(services, "document.deleted") == []

    trashed = await select(http, world.acme_folder, token, "trash", a, b)
    assert trashed.status_code == 303
    shown = await http.get(trashed.headers["location"])
    assert "2 documents were moved to the trash." in shown.text
    assert len(await events(services, "document.deleted")) == 2
