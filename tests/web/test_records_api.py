"""The records API: usage, quotas, retention policies and legal holds; who may do what,
what is audited, and every manual path by which something under a hold could be deleted,
or moved out from under it (API and pages), refused while the hold stands."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import csrf_of
from tests.fixtures.quotas import put
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault.db import transaction
from vault.models import AuditEvent, Document, Folder
from vault.policy import SYSTEM
from vault.quarantine_tables import HeldVersion
from web.services import Services
from web.settings import ScanSettings, Settings

API = "/api/v1"


async def events(services: Services, action: str) -> list[dict[str, Any]]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        found = []
        for event in rows.scalars():
            details = json.loads(event.details)
            details.pop("request_id", None)
            found.append({"actor": event.actor_id, "details": details})
        return found


async def test_usage_is_shown_to_whoever_sees_the_client_and_quota_set_by_admins(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    assert (await put(http, world, "a.bin", b"a" * 300)).status_code == 201
    url = f"{API}/clients/{world.acme}/usage"
    for who in ("alice", "sam", "ada"):
        response = await http.get(url, headers=world[who].auth)
        assert response.json() == {
            "used_bytes": 300,
            "reserved_bytes": 0,
            "quota_bytes": None,
            "percent": None,
        }
    assert (await http.get(url, headers=world["bob"].auth)).status_code == 404
    quota = f"{API}/clients/{world.acme}/quota"
    assert (
        await http.put(quota, json={"quota_bytes": 1000}, headers=world["sam"].auth)
    ).status_code == 403
    assert (
        await http.put(quota, json={"quota_bytes": 1000}, headers=world["bob"].auth)
    ).status_code == 404
    assert (
        await http.put(quota, json={"quota_bytes": -1}, headers=world["ada"].auth)
    ).status_code == 422
    assert (await http.put(quota, json={}, headers=world["ada"].auth)).status_code == 422
    response = await http.put(quota, json={"quota_bytes": 1000}, headers=world["ada"].auth)
    assert response.status_code == 200, response.text
    assert response.json()["percent"] == 30
    assert [e["details"] for e in await events(services, "quota.set")] == [
        {"quota_bytes": 1000, "previous": None}
    ]
    usage = await http.get(url, headers=world["alice"].auth)
    assert usage.json()["quota_bytes"] == 1000


async def test_policies_are_set_listed_and_dry_run_by_admins(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    for n in range(3):
        assert (await put(http, world, "a.bin", bytes([n]) * 10)).status_code in (200, 201)
    url = f"{API}/clients/{world.acme}/retention"
    body = {"keep_versions": 1, "trash_days": 30}
    assert (await http.put(url, json=body, headers=world["sam"].auth)).status_code == 403
    assert (
        await http.put(url, json={"keep_days": "x"}, headers=world["ada"].auth)
    ).status_code == 422
    response = await http.put(url, json=body, headers=world["ada"].auth)
    assert response.status_code == 200, response.text
    folder = {"folder_id": str(world.acme_folder), "keep_versions": 2}
    assert (await http.put(url, json=folder, headers=world["ada"].auth)).status_code == 200
    listed = (await http.get(url, headers=world["ada"].auth)).json()["policies"]
    assert [(p["folder_id"], p["keep_versions"], p["trash_days"]) for p in listed] == [
        (None, 1, 30),
        (str(world.acme_folder), 2, None),
    ]
    plan = (await http.get(f"{url}/plan", headers=world["ada"].auth)).json()["items"]
    assert [(i["kind"], i["name"], i["version"]) for i in plan] == [("version", "a.bin", 1)]
    removed = await http.put(
        url, json={"folder_id": str(world.acme_folder)}, headers=world["ada"].auth
    )
    assert removed.json()["removed"] is True
    plan = (await http.get(f"{url}/plan", headers=world["ada"].auth)).json()["items"]
    assert [i["version"] for i in plan] == [1, 2]
    assert len(await events(services, "retention.policy_set")) == 3


async def test_a_hold_is_placed_and_released_with_reasons_and_audited(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    response = await put(http, world, "keep.bin", b"k" * 10)
    document_id = response.json()["document_id"]
    url = f"{API}/clients/{world.acme}/holds"
    assert (
        await http.post(url, json={"reason": "x"}, headers=world["sam"].auth)
    ).status_code == 403
    assert (
        await http.post(url, json={"reason": "x"}, headers=world["bob"].auth)
    ).status_code == 404
    assert (await http.post(url, json={}, headers=world["ada"].auth)).status_code == 422
    assert (
        await http.post(url, json={"reason": " "}, headers=world["ada"].auth)
    ).status_code == 422
    placed = await http.post(
        url,
        json={"reason": "Subpoena 7", "folder_id": str(world.acme_folder)},
        headers=world["ada"].auth,
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    refused = await http.delete(f"{API}/documents/{document_id}", headers=world["sam"].auth)
    assert refused.status_code == 409
    assert refused.json()["title"] == "Legal hold"
    release = f"{API}/holds/{hold['id']}/release"
    assert (await http.post(release, json={}, headers=world["ada"].auth)).status_code == 422
    released = await http.post(release, json={"reason": "Withdrawn"}, headers=world["ada"].auth)
    assert released.json()["release_reason"] == "Withdrawn"
    again = await http.post(release, json={"reason": "Twice"}, headers=world["ada"].auth)
    assert again.status_code == 409
    listed = (await http.get(url, headers=world["ada"].auth)).json()["holds"]
    assert [(h["reason"], h["release_reason"]) for h in listed] == [("Subpoena 7", "Withdrawn")]
    assert [e["details"] for e in await events(services, "hold.placed")] == [
        {"folder_id": str(world.acme_folder), "reason": "Subpoena 7"}
    ]
    assert [(e["actor"], e["details"]) for e in await events(services, "hold.released")] == [
        (str(world["ada"].id), {"folder_id": str(world.acme_folder), "reason": "Withdrawn"})
    ]
    deleted = await http.delete(f"{API}/documents/{document_id}", headers=world["sam"].auth)
    assert deleted.status_code == 204


async def test_a_hold_blocks_moving_to_the_trash_from_the_page(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    document_id = (await put(http, world, "page.bin", b"p" * 10)).json()["document_id"]
    placed = await http.post(
        f"{API}/clients/{world.acme}/holds",
        json={"reason": "Investigation"},
        headers=world["ada"].auth,
    )
    assert placed.status_code == 201
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{document_id}")
    response = await http.post(
        f"/documents/{document_id}/trash", data={"csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 409
    assert "Under legal hold" in response.text
    async with transaction(services.sessions) as session:
        document = await session.get(Document, uuid.UUID(document_id))
        assert document is not None and document.deleted_at is None


async def hold_folder(http: httpx.AsyncClient, world: World, folder_id: uuid.UUID) -> str:
    placed = await http.post(
        f"{API}/clients/{world.acme}/holds",
        json={"reason": "Subpoena 9", "folder_id": str(folder_id)},
        headers=world["ada"].auth,
    )
    assert placed.status_code == 201, placed.text
    hold_id: str = placed.json()["id"]
    return hold_id


async def filed(services: Services) -> dict[str, tuple[uuid.UUID, bool]]:
    """Each document's folder and whether it is in the trash."""
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(Document))).scalars().all()
        return {d.name: (d.folder_id, d.deleted_at is not None) for d in rows}


async def test_a_hold_blocks_bulk_trash_and_every_move_out_from_under_it(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    ids = [(await put(http, world, n, n.encode() * 9)).json()["document_id"] for n in "ab"]
    async with transaction(services.sessions) as session:
        inner = await folder_service.create_folder(
            session,
            SYSTEM,
            TEST_CONTEXT,
            client_id=world.acme,
            parent_id=world.acme_folder,
            name="Inner",
        )
        outside = await folder_service.create_folder(
            session, SYSTEM, TEST_CONTEXT, client_id=world.acme, parent_id=None, name="Outside"
        )
    await hold_folder(http, world, world.acme_folder)
    before = await filed(services)
    await sign_in(http, world["sam"], second_factor=True)
    token = csrf_of((await http.get(f"/folders/{world.acme_folder}")).text)
    selected = [("csrf_token", token)] + [("document_id", i) for i in ids]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    selection = f"/folders/{world.acme_folder}/selection"

    refused = [
        # The folder listing's selection: trash, or move elsewhere, several at once.
        await http.post(
            selection, content=urlencode([*selected, ("action", "trash")]), headers=form
        ),
        await http.post(
            selection,
            content=urlencode([*selected, ("action", "move"), ("folder_id", str(outside.id))]),
            headers=form,
        ),
        # One document's move form, and a folder's (out of the held folder it is in).
        await http.post(
            f"/documents/{ids[0]}/move", data={"csrf_token": token, "folder_id": str(outside.id)}
        ),
        await http.post(
            f"/folders/{inner.id}/move", data={"csrf_token": token, "parent_id": str(outside.id)}
        ),
    ]
    for response in refused:
        assert response.status_code == 409, response.text
        assert "Under legal hold" in response.text
    moved = await http.patch(
        f"{API}/documents/{ids[0]}",
        json={"folder_id": str(outside.id)},
        headers=world["sam"].auth,
    )
    assert moved.status_code == 409 and moved.json()["title"] == "Legal hold"
    # Within the held folder, a rename still goes: nothing leaves the hold.
    renamed = await http.patch(
        f"{API}/documents/{ids[1]}", json={"name": "b2"}, headers=world["sam"].auth
    )
    assert renamed.status_code == 200, renamed.text

    after = await filed(services)
    assert after.pop("b2") == before.pop("b")
    assert after == before
    async with transaction(services.sessions) as session:
        folder = await session.get_one(Folder, inner.id)
        assert folder.parent_id == world.acme_folder
    for action in ("document.deleted", "document.moved", "folder.moved"):
        assert await events(services, action) == []


class TestQuarantineUnderAHold:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"scan": ScanSettings(all_uploads=True, worker=False)})

    async def test_a_hold_blocks_deleting_a_held_version(
        self, http: httpx.AsyncClient, services: Services, world: World
    ) -> None:
        assert (await put(http, world, "q.bin", b"q" * 50, who="alice")).status_code == 202
        async with transaction(services.sessions) as session:
            [row] = (await session.execute(select(HeldVersion))).scalars().all()
        hold_id = await hold_folder(http, world, world.acme_folder)
        await sign_in(http, world["sam"], second_factor=True)
        token = csrf_of((await http.get(f"/folders/{world.acme_folder}")).text)
        url = f"/quarantine/{row.version_id}/delete"
        refused = await http.post(url, data={"csrf_token": token})
        assert refused.status_code == 409
        assert "Under legal hold" in refused.text
        async with transaction(services.sessions) as session:
            kept = await session.get_one(HeldVersion, row.version_id)
            assert kept.held and kept.wrapped_dek == row.wrapped_dek
        stored = [o.key async for o in services.store.list(row.storage_key)]
        assert stored == [row.storage_key]
        assert await events(services, "quarantine.deleted") == []

        released = await http.post(
            f"{API}/holds/{hold_id}/release", json={"reason": "Over"}, headers=world["ada"].auth
        )
        assert released.status_code == 200
        deleted = await http.post(url, data={"csrf_token": token})
        assert deleted.status_code == 303
        assert not [o async for o in services.store.list(row.storage_key)]
        assert len(await events(services, "quarantine.deleted")) == 1
