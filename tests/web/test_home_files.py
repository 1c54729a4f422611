"""Home leads to the files: a client of one client lands among its folders; staff get a
filter over many clients and a call to review what clients sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault.db import transaction
from vault.policy import SYSTEM
from web.services import Services

API = "/api/v1"


async def test_a_client_of_one_client_lands_among_its_folders(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    page = (await http.get("/")).text
    assert f'href="/folders/{world.acme_folder}"' in page
    # The folders come before what is new and the requests.
    assert page.index(f'href="/folders/{world.acme_folder}"') < page.index('id="news"')


async def test_sentences_on_home_are_joined_with_spaces(
    http: httpx.AsyncClient, world: World
) -> None:
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    asked = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={"title": "Q4", "due_date": due, "folder_id": str(world.acme_folder), "items": ["A"]},
        headers=world["sam"].auth,
    )
    assert asked.status_code == 201, asked.text
    await sign_in(http, world["alice"], second_factor=True)
    text = re.sub(r"\s+", " ", (await http.get("/")).text)
    assert "1 open request. Upload the documents" in text


async def test_staff_see_a_review_call_and_filter_many_clients(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        for n in range(7):
            await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, f"Client {n:02d}")
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    asked = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={"title": "Q4", "due_date": due, "folder_id": str(world.acme_folder), "items": ["A"]},
        headers=world["sam"].auth,
    )
    request = asked.json()
    document = await http.put(
        f"{API}/folders/{world.acme_folder}/files/a.pdf",
        content=b"%PDF",
        headers=world["alice"].auth,
    )
    submitted = await http.post(
        f"{API}/requests/{request['id']}/items/{request['items'][0]['id']}/submit",
        json={"document_id": document.json()["document_id"]},
        headers=world["alice"].auth,
    )
    assert submitted.status_code == 200, submitted.text

    await sign_in(http, world["ada"], second_factor=True)
    page = (await http.get("/")).text
    assert re.search(
        r'class="home-cta"><a class="button" href="/requests">1 submission waiting', page
    )
    assert 'id="client-filter"' in page  # nine clients: more than a screen of tiles
    filtered = (await http.get("/", params={"q": "globex"})).text
    tiles = re.findall(
        r'<h3 class="tile__title"><a href="/clients/[^"]+"><bdi>([^<]+)</bdi>', filtered
    )
    assert tiles == ["Globex"]
    none = (await http.get("/", params={"q": "zzz"})).text
    assert "No client’s name contains" in none
