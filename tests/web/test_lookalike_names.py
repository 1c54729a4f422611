"""Look-alike names over the API and pages (review item 11): refused in documents and
folders, found by their stored keys rather than by reading the folder, and a client cannot
pass for the firm's staff by their display name."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from alembic import command
from sqlalchemy import Engine, event
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.lookalikes import LOOKALIKES, ORIGINAL
from tests.fixtures.signin import sign_in
from vault.db import alembic_config, transaction
from vault.folders import free_sibling_name, siblings_like
from vault.lookalikes import lookalike_keys
from vault.models import Document
from vault.names import free_name
from web.services import Services

API = "/api/v1"
KEYS = ("name_key", "lookalike_key", "lookalike_folded_key")


def url(folder: object, name: str) -> str:
    return f"{API}/folders/{folder}/files/{quote(name, safe='').replace('.', '%2E')}"


@pytest.mark.parametrize(("name", "rule"), LOOKALIKES)
async def test_no_lookalike_joins_a_document_in_its_folder(
    http: httpx.AsyncClient, world: World, name: str, rule: str
) -> None:
    alice = world["alice"].auth
    assert (
        await http.put(url(world.acme_folder, ORIGINAL), content=b"1", headers=alice)
    ).status_code == 201
    refused = await http.put(url(world.acme_folder, name), content=b"2", headers=alice)
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == rule
    listed = (await http.get(f"{API}/folders/{world.acme_folder}", headers=alice)).json()
    assert [d["name"] for d in listed["documents"]] == [ORIGINAL]
    # The same name in another case is still a new version, not a look-alike.
    again = await http.put(url(world.acme_folder, "invoice 2026.PDF"), content=b"3", headers=alice)
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("name", "rule"),
    [("Tax\u00a02026", "invisible_character"), ("\u0422ax 2026", "confusable")],
)
async def test_no_lookalike_folder_beside_a_folder(
    http: httpx.AsyncClient, world: World, name: str, rule: str
) -> None:
    refused = await http.post(
        f"{API}/folders",
        json={"client_id": str(world.acme), "name": name},
        headers=world["sam"].auth,
    )
    assert refused.status_code == 422 and refused.json()["rule"] == rule


async def test_a_client_cannot_pass_for_staff_by_display_name(
    http: httpx.AsyncClient, world: World
) -> None:
    alice, sam = world["alice"], world["sam"]
    hidden = await http.put(
        f"{API}/me/profile", json={"display_name": "Sam\u200b Staff"}, headers=alice.auth
    )
    assert hidden.status_code == 422
    for who, name in ((alice, "staff@firm.example"), (sam, "Sam Staff")):
        made = await http.put(f"{API}/me/profile", json={"display_name": name}, headers=who.auth)
        assert made.status_code == 200, made.text
    put = await http.put(url(world.acme_folder, "from-alice.pdf"), content=b"a", headers=alice.auth)
    doc = put.json()["document_id"]
    await http.put(url(world.acme_folder, "from-sam.pdf"), content=b"s", headers=sam.auth)
    await sign_in(http, sam, second_factor=True)
    shown = f"staff@firm.example &lt;{alice.email}&gt;"
    folder = (await http.get(f"/folders/{world.acme_folder}")).text
    assert shown in folder  # the "By" column
    assert "<bdi>Sam Staff</bdi>" in folder  # the firm's own are shown by name alone
    assert shown in (await http.get(f"/documents/{doc}")).text  # the version list
    assert shown in (await http.get(f"/clients/{world.acme}/search", params={"q": "from"})).text


async def test_an_invitation_refuses_an_invisible_display_name(
    http: httpx.AsyncClient, world: World
) -> None:
    refused = await http.post(
        f"{API}/invitations",
        json={
            "email": "carol@example.test",
            "client_ids": [str(world.acme)],
            "display_name": "Carol\u2060",
        },
        headers=world["sam"].auth,
    )
    assert refused.status_code == 422 and refused.json()["field"] == "display_name"


# --- Found by index -----------------------------------------------------------------------


async def stored_keys(services: Services, folder: object) -> dict[str, tuple[str, str]]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(Document.name, Document.lookalike_key, Document.lookalike_folded_key).where(
                col(Document.folder_id) == folder
            )
        )
        return {name: (own, folded) for name, own, folded in rows}


async def test_a_name_is_checked_only_against_the_names_that_share_its_keys(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"].auth
    names = [ORIGINAL, *(f"Statement {n:02}.pdf" for n in range(30))]
    for name in names:
        assert (
            await http.put(url(world.acme_folder, name), content=b"x", headers=alice)
        ).is_success
    made = await http.post(
        f"{API}/folders",
        json={"client_id": str(world.acme), "parent_id": str(world.acme_folder), "name": "Tax"},
        headers=world["sam"].auth,
    )
    assert made.status_code == 201, made.text

    async def near(name: str) -> list[str]:
        async with transaction(services.sessions) as session:
            found = await siblings_like(
                session, client_id=world.acme, parent_id=world.acme_folder, name=name
            )
        return sorted(other for _, other in found)

    # Of the 32 names beside it, a name meets only the one it could be taken for...
    assert await near("Inv\u043eice 2026.pdf") == [ORIGINAL]
    assert await near("Invoice  2026.pdf") == [ORIGINAL]
    assert await near("INVOICE 2026.PDF") == [ORIGINAL]  # the same name: its key
    assert await near("\u0422ax") == ["Tax"]  # subfolders too
    assert await near("Statement 99.pdf") == []
    # ...and every stored key is what the name gives now.
    keys = await stored_keys(services, world.acme_folder)
    assert keys == {name: lookalike_keys(name) for name in names}


async def test_a_drops_name_is_numbered_from_the_names_its_copies_could_clash_with(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    taken = ["plan.txt", *(f"plan ({n}).txt" for n in range(2, 44)), "pIan (45).txt"]
    for name in [*taken, *(f"Statement {n:02}.pdf" for n in range(20))]:
        put = await http.put(url(world.acme_folder, name), content=b"x", headers=world["sam"].auth)
        assert put.is_success, put.text
    reserved = ["plan (44).txt"]  # a drop still under way
    selects: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        async with transaction(services.sessions) as session:
            found = await free_sibling_name(
                session,
                client_id=world.acme,
                parent_id=world.acme_folder,
                name="plan.txt",
                reserved=reserved,
            )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)

    # What numbering against every name of the folder gives: 45 reads as `pIan (45).txt`.
    assert found == free_name("plan.txt", [*taken, *reserved]) == "plan (46).txt"
    # Three lookups of sixteen candidates each, by their keys, not a read of the folder.
    assert len(selects) == 3 and all("lookalike_key" in s for s in selects), selects


async def test_a_renamed_document_is_guarded_under_its_new_name(
    http: httpx.AsyncClient, world: World
) -> None:
    sam = world["sam"].auth
    put = await http.put(url(world.acme_folder, "Draft.pdf"), content=b"1", headers=sam)
    renamed = await http.patch(
        f"{API}/documents/{put.json()['document_id']}", json={"name": ORIGINAL}, headers=sam
    )
    assert renamed.status_code == 200, renamed.text
    refused = await http.put(
        url(world.acme_folder, "Inv\u043eice 2026.pdf"), content=b"2", headers=sam
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "confusable"
    # The old name's look-alike is free now.
    freed = await http.put(url(world.acme_folder, "Dr\u0430ft.pdf"), content=b"3", headers=sam)
    assert freed.status_code == 201, freed.text


async def test_the_migration_gives_existing_names_their_keys(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"].auth
    names = [ORIGINAL, "Übersicht 年度.txt", "Report.PDF"]
    for name in names:
        assert (
            await http.put(url(world.acme_folder, name), content=b"x", headers=alice)
        ).is_success
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0024"))
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    keys = await stored_keys(services, world.acme_folder)
    assert keys == {name: lookalike_keys(name) for name in names}
    refused = await http.put(
        url(world.acme_folder, "Inv\u043eice 2026.pdf"), content=b"2", headers=alice
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "confusable"


async def test_on_sqlite_each_key_is_a_lookup_in_its_index(
    world: World, services: Services
) -> None:
    if services.engine.dialect.name != "sqlite":
        pytest.skip("the plan asked for is SQLite's (an OR of the keys would walk the folder)")
    sent: list[tuple[str, Any]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        async with transaction(services.sessions) as session:
            await siblings_like(
                session, client_id=world.acme, parent_id=world.acme_folder, name=ORIGINAL
            )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    ((statement, parameters),) = [(s, p) for s, p in sent if "lookalike_key" in s]
    async with services.engine.connect() as conn:
        explained = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        plan: list[str] = [str(step) for *_, step in explained]
    # A SEARCH on all the columns of one of the indexes, for each key; a SCAN would walk.
    reads = [
        re.sub(r" USING INDEX \S+", "", step)
        for step in plan
        if step.startswith(("SEARCH", "SCAN"))
    ]
    folder, document = "client_id=? AND parent_ref=? AND", "folder_id=? AND"
    assert reads == [
        *(f"SEARCH folders ({folder} {key}=?)" for key in KEYS),
        *(f"SEARCH documents ({document} {key}=?)" for key in KEYS),
    ], plan
