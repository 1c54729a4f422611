"""The records page (administrators only) and the storage shown on folder pages."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.pages import csrf_of
from tests.fixtures.quotas import put, set_quota
from tests.fixtures.signin import sign_in
from vault import quotas
from vault.db import transaction
from vault.records import LegalHold, RetentionPolicy
from web.services import Services


async def test_clients_see_their_storage_against_the_quota_on_folder_pages(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    assert (await put(http, world, "a.bin", b"a" * 850)).status_code == 201
    await sign_in(http, world["alice"])
    for path in (f"/folders/{world.acme_folder}", f"/clients/{world.acme}"):
        page = await http.get(path)
        assert page.status_code == 200
        # Sizes keep their number and unit together with a no-break space.
        assert "Storage used: 850\u00a0B of 1\u00a0KB (85 %)" in page.text
        assert '<meter id="storage-meter"' in page.text
        assert "/records" not in page.text  # the records page is for administrators


async def test_only_administrators_have_a_records_page(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    assert (await http.get(f"/admin/clients/{world.acme}/records")).status_code == 404


async def test_an_administrator_sets_quota_policy_and_holds_with_the_forms(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    url = f"/admin/clients/{world.acme}/records"
    page = await http.get(url)
    assert page.status_code == 200, page.text
    csrf = csrf_of(page.text)
    refused = await http.post(f"{url}/quota", data={"csrf_token": csrf, "quota": "10 GB"})
    assert refused.status_code == 422
    assert "Enter a whole number of bytes" in refused.text
    done = await http.post(f"{url}/quota", data={"csrf_token": csrf, "quota": "5000"})
    assert done.headers["location"] == f"{url}?done=quota"
    async with transaction(services.sessions) as session:
        assert await quotas.quota_of(session, world.acme, default=0) == 5000
    done = await http.post(
        f"{url}/retention",
        data={
            "csrf_token": csrf,
            "scope": str(world.acme_folder),
            "keep_versions": "3",
            "keep_days": "",
            "trash_days": "30",
        },
    )
    assert done.status_code == 303
    no_reason = await http.post(f"{url}/holds", data={"csrf_token": csrf, "scope": "client"})
    assert no_reason.status_code == 422
    assert "Give a reason." in no_reason.text
    placed = await http.post(
        f"{url}/holds", data={"csrf_token": csrf, "scope": "client", "reason": "Case 4"}
    )
    assert placed.headers["location"] == f"{url}?done=held"
    async with transaction(services.sessions) as session:
        policy = (await session.execute(select(RetentionPolicy))).scalar_one()
        assert (policy.scope, policy.keep_versions, policy.keep_days, policy.trash_days) == (
            str(world.acme_folder),
            3,
            None,
            30,
        )
        hold = (await session.execute(select(LegalHold))).scalar_one()
    page = await http.get(url)
    assert "Case 4" in page.text and "Tax 2026" in page.text
    released = await http.post(
        f"{url}/holds/{hold.id}/release", data={"csrf_token": csrf, "reason": "Over"}
    )
    assert released.headers["location"] == f"{url}?done=released"
    async with transaction(services.sessions) as session:
        rows = await session.execute(select(LegalHold).where(col(LegalHold.id) == hold.id))
        assert rows.scalar_one().release_reason == "Over"


async def test_a_restore_past_the_quota_is_refused_with_a_page_that_says_why(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    document_id = (await put(http, world, "a.bin", b"a" * 600)).json()["document_id"]
    assert (await put(http, world, "a.bin", b"b" * 300)).status_code == 200
    await set_quota(services, world.acme, 1000)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{document_id}")
    response = await http.post(
        f"/documents/{document_id}/versions/1/restore", data={"csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 413
    assert "Storage quota used up" in response.text
    async with transaction(services.sessions) as session:
        assert await quotas.client_usage(session, world.acme) == 900
