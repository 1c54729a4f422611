"""A download another site forces on a signed-in browser is served, audited as a download,
and never counted as a delivery (review item 12)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.documents import events, put
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import VersionReceipt
from web.services import Services

API = "/api/v1"


async def receipts(services: Services) -> int:
    async with transaction(services.sessions) as session:
        return len((await session.execute(select(VersionReceipt))).scalars().all())


@pytest.mark.parametrize(
    "fetch_site",
    [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {}],
    ids=["cross-site", "same-site", "unsaid"],
)
async def test_a_forced_download_records_no_receipt(
    http: httpx.AsyncClient, world: World, services: Services, fetch_site: dict[str, str]
) -> None:
    doc = await put(http, world, "sam", world.acme_folder, "statement.pdf", b"%PDF-1.7 x")
    await sign_in(http, world["alice"], second_factor=True)
    forced = await http.get(f"{API}/documents/{doc}/content", headers=fetch_site)
    assert forced.status_code == 200 and forced.content == b"%PDF-1.7 x"
    zipped = await http.get(f"/folders/{world.acme_folder}/download.zip", headers=fetch_site)
    assert zipped.status_code == 200
    # The access is on the record; a delivery is not.
    assert len(await events(services, "document.downloaded")) == 2
    assert await events(services, "document.download_completed") == []
    assert await receipts(services) == 0


@pytest.mark.parametrize("site", ["same-origin", "none"])
async def test_a_deliberate_browser_download_records_its_receipt(
    http: httpx.AsyncClient, world: World, services: Services, site: str
) -> None:
    doc = await put(http, world, "sam", world.acme_folder, "statement.pdf", b"%PDF-1.7 x")
    await sign_in(http, world["alice"], second_factor=True)
    got = await http.get(f"{API}/documents/{doc}/content", headers={"Sec-Fetch-Site": site})
    assert got.status_code == 200
    assert len(await events(services, "document.download_completed")) == 1
    assert await receipts(services) == 1
    zipped = await http.get(
        f"/folders/{world.acme_folder}/download.zip", headers={"Sec-Fetch-Site": site}
    )
    assert zipped.status_code == 200
    assert len(await events(services, "document.download_completed")) == 2


async def test_a_script_with_a_token_records_its_receipt(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "sam", world.acme_folder, "statement.pdf", b"%PDF-1.7 x")
    got = await http.get(f"{API}/documents/{doc}/content", headers=world["alice"].auth)
    assert got.status_code == 200
    assert len(await events(services, "document.download_completed")) == 1
    assert await receipts(services) == 1
