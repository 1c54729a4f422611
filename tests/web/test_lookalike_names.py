"""Look-alike names over the API and pages (review item 11): refused in documents and
folders, and a client cannot pass for the firm's staff by their display name."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.fixtures.app import World
from tests.fixtures.lookalikes import LOOKALIKES, ORIGINAL
from tests.fixtures.signin import sign_in

API = "/api/v1"


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
