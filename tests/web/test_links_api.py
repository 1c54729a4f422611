"""The link API: creating, listing and revoking share and upload-request links, within the
client's link policy, with the token shown once and never stored or audited."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.dates import soon
from vault.db import transaction
from vault.links import Link
from vault.models import AuditEvent
from web.services import Services

API = "/api/v1"


async def new_document(http: httpx.AsyncClient, world: World, name: str = "report.pdf") -> str:
    response = await http.put(
        f"{API}/folders/{world.acme_folder}/files/{name}",
        content=b"%PDF-1.7 quarterly figures",
        headers=world["sam"].auth,
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def create(
    http: httpx.AsyncClient, who: dict[str, str], path: str, **body: Any
) -> httpx.Response:
    return await http.post(f"{API}/{path}/links", json={"expires_at": soon(), **body}, headers=who)


async def test_a_document_link_is_created_with_its_token_shown_once_and_stored_hashed(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await new_document(http, world)
    response = await create(
        http, world["sam"].auth, f"documents/{document_id}", password="correct horse battery"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "download" and body["document_id"] == document_id
    assert body["has_password"] is True and "password" not in body
    prefix = "http://127.0.0.1:8000/s/"
    assert body["url"].startswith(prefix)
    token = body["url"].removeprefix(prefix)
    assert len(token) >= 43  # 256 bits, base64url

    async with transaction(services.sessions) as session:
        link = (await session.execute(select(Link))).scalar_one()
        events = (await session.execute(select(AuditEvent))).scalars().all()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert link.password_hash is not None and link.password_hash.startswith("$argon2id$")
    assert all(token not in e.details for e in events)
    created = [e for e in events if e.action == "link.created"]
    assert len(created) == 1 and created[0].target_id == body["id"]

    listed = await http.get(
        f"{API}/links", params={"document_id": document_id}, headers=world["sam"].auth
    )
    assert [link["id"] for link in listed.json()["links"]] == [body["id"]]
    assert "url" not in listed.json()["links"][0]


async def test_upload_links_go_into_folders_with_their_limits_checked(
    http: httpx.AsyncClient, world: World
) -> None:
    folder = f"folders/{world.acme_folder}"
    ok = await create(
        http, world["sam"].auth, folder, kind="upload", max_files=3, max_file_bytes=1000
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["max_files"], ok.json()["max_file_bytes"]) == (3, 1000)
    document_id = await new_document(http, world)
    on_document = await create(http, world["sam"].auth, f"documents/{document_id}", kind="upload")
    assert on_document.status_code == 422 and on_document.json()["field"] == "kind"
    for bad in ({"max_files": 0}, {"max_downloads": 2}, {"max_file_bytes": "big"}):
        refused = await create(http, world["sam"].auth, folder, kind="upload", **bad)
        assert refused.status_code == 422, (bad, refused.text)


async def test_expiry_is_required_and_bounded_by_the_policy(
    http: httpx.AsyncClient, world: World
) -> None:
    folder = f"folders/{world.acme_folder}"
    missing = await http.post(f"{API}/{folder}/links", json={}, headers=world["sam"].auth)
    assert missing.status_code == 422 and missing.json()["field"] == "expires_at"
    too_far = await create(http, world["sam"].auth, folder, expires_at=soon(31))
    assert too_far.status_code == 422 and too_far.json()["field"] == "expires_at"
    past = await create(http, world["sam"].auth, folder, expires_at=soon(-1))
    assert past.status_code == 422


async def test_client_users_create_links_only_where_their_client_policy_allows(
    http: httpx.AsyncClient, world: World
) -> None:
    folder = f"folders/{world.acme_folder}"
    assert (await create(http, world["alice"].auth, folder)).status_code == 403
    policy = f"{API}/clients/{world.acme}/link-policy"
    assert (
        await http.put(policy, json={"creators": "staff_and_clients"}, headers=world["sam"].auth)
    ).status_code == 403
    changed = await http.put(
        policy,
        json={"creators": "staff_and_clients", "max_expiry_days": 5},
        headers=world["ada"].auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["effective"]["creators"] == "staff_and_clients"
    assert (await create(http, world["alice"].auth, folder)).status_code == 201
    assert (await create(http, world["alice"].auth, folder, expires_at=soon(6))).status_code == 422
    # Upload-request links stay the firm's: a client user may share, not open a drop box.
    dropbox = await create(http, world["alice"].auth, folder, kind="upload")
    assert dropbox.status_code == 403, dropbox.text
    # Bob belongs to another client: the folder does not exist for him.
    assert (await create(http, world["bob"].auth, folder)).status_code == 404

    off = await http.put(policy, json={"allowed": False}, headers=world["ada"].auth)
    assert off.json()["effective"]["allowed"] is False
    assert (await create(http, world["sam"].auth, folder)).status_code == 403


async def test_revoking_is_for_staff_of_the_client_or_the_creator(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    created = await create(http, world["sam"].auth, f"folders/{world.acme_folder}")
    link_id = created.json()["id"]
    assert (
        await http.delete(f"{API}/links/{link_id}", headers=world["gina"].auth)
    ).status_code == 404
    assert (
        await http.delete(f"{API}/links/{link_id}", headers=world["alice"].auth)
    ).status_code == 404
    assert (
        await http.delete(f"{API}/links/{link_id}", headers=world["sam"].auth)
    ).status_code == 204
    listed = await http.get(
        f"{API}/links", params={"folder_id": str(world.acme_folder)}, headers=world["sam"].auth
    )
    assert listed.json()["links"][0]["state"] == "revoked"
    async with transaction(services.sessions) as session:
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.target_id == link_id)
                )
            )
            .scalars()
            .all()
        )
    # Gina's and Alice's attempts are refusals (access.denied), not link events.
    assert [a for a in actions if a.startswith("link.")] == ["link.created", "link.revoked"]
