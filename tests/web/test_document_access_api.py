"""The document API end to end, deciding who: roles, read-only and dead tokens, folders,
clients and the audit events each call leaves behind."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.document_requests import assert_problem, content_url, new_document, payload
from tests.fixtures.documents import API, upload
from vault import accounts
from vault.db import transaction
from vault.models import TokenScope, User
from web.services import Services


async def audit_events(
    http: httpx.AsyncClient, world: World, **filters: str
) -> list[dict[str, Any]]:
    response = await http.get(f"{API}/audit", params=filters, headers=world["otto"].auth)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


# --- who may do what ------------------------------------------------------------------------


async def test_roles(http: httpx.AsyncClient, world: World) -> None:
    alice, sam, ada = world["alice"].auth, world["sam"].auth, world["ada"].auth
    document_id = await new_document(http, world, "a.txt", b"a")  # clients may upload

    body = assert_problem(await http.delete(f"{API}/documents/{document_id}", headers=alice), 403)
    assert body["title"] == "Forbidden"
    folder_body = {"client_id": str(world.acme), "name": "Mine"}
    assert_problem(await http.post(f"{API}/folders", json=folder_body, headers=alice), 403)
    assert (await http.get(content_url(document_id), headers=alice)).status_code == 200

    response = await http.post(f"{API}/folders", json=folder_body, headers=sam)
    assert response.status_code == 201, response.text
    globex_folder = {"client_id": str(world.globex), "name": "Admin made"}
    response = await http.post(f"{API}/folders", json=globex_folder, headers=ada)
    assert response.status_code == 201, response.text
    assert (await http.delete(f"{API}/documents/{document_id}", headers=ada)).status_code == 204
    other = await new_document(http, world, "b.txt", b"b")
    assert (await http.delete(f"{API}/documents/{other}", headers=sam)).status_code == 204
    await check_me(http, world)


@pytest.fixture
async def read_only(services: Services, world: World) -> dict[str, str]:
    """A read-only token of sam, staff of Acme (who could otherwise write)."""
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["sam"].id)
        assert user is not None
        _, secret = await accounts.create_token(
            session, TEST_CONTEXT, user, name="ro", scope=TokenScope.READ
        )
    return {"Authorization": f"Bearer {secret}"}


async def check_read_only_token(
    http: httpx.AsyncClient, world: World, read_only: dict[str, str]
) -> None:
    document_id = await new_document(http, world, "ro.txt", b"read me")
    response = await http.get(content_url(document_id), headers=read_only)
    assert response.status_code == 200 and response.content == b"read me"
    assert (await http.get(f"{API}/documents/{document_id}", headers=read_only)).status_code == 200

    assert_problem(await upload(http, read_only, world.acme_folder, "ro.txt", b"x"), 403)
    assert_problem(await upload(http, read_only, world.acme_folder, "new.txt", b"x"), 403)
    assert_problem(await http.delete(f"{API}/documents/{document_id}", headers=read_only), 403)
    folder = {"client_id": str(world.acme), "name": "RO"}
    assert_problem(await http.post(f"{API}/folders", json=folder, headers=read_only), 403)
    assert_problem(await http.post(f"{API}/clients", json={"name": "RO"}, headers=read_only), 403)
    meta = (await http.get(f"{API}/documents/{document_id}", headers=read_only)).json()
    assert len(meta["versions"]) == 1


@pytest.fixture
async def dead_tokens(services: Services, world: World) -> dict[str, str]:
    """Tokens of sam that no longer authenticate, by why."""
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["sam"].id)
        assert user is not None
        revoked, revoked_secret = await accounts.create_token(session, TEST_CONTEXT, user)
        await accounts.revoke_token(session, TEST_CONTEXT, user, revoked.id)
        _, expired_secret = await accounts.create_token(
            session, TEST_CONTEXT, user, expires_in=timedelta(seconds=-1)
        )
        gina = await session.get(User, world["gina"].id)
        assert gina is not None
        gina.is_active = False
        session.add(gina)
    return {"revoked": revoked_secret, "expired": expired_secret, "inactive": world["gina"].token}


async def check_unauthenticated(
    http: httpx.AsyncClient, world: World, dead_tokens: dict[str, str]
) -> None:
    document_id = await new_document(http, world, "secret.txt", b"secret")
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer cvt_not-a-real-token"},
        {"Authorization": "Bearer not-even-the-prefix"},
        {"Authorization": f"Basic {world['sam'].token}"},
        {"Authorization": world["sam"].token},
        *({"Authorization": f"Bearer {secret}"} for secret in dead_tokens.values()),
    ]
    for header in headers:
        for response in (
            await http.get(content_url(document_id), headers=header),
            await http.get(f"{API}/documents/{document_id}", headers=header),
            await http.get(f"{API}/me", headers=header),
            await upload(http, header, world.acme_folder, "secret.txt", b"overwrite"),
        ):
            body = assert_problem(response, 401)
            assert body["title"] == "Unauthorized", header
            assert response.headers["www-authenticate"].lower().startswith("bearer"), header
    # One answer for every kind of bad token: nothing tells a guesser which it was.
    bodies = set()
    for secret in [*dead_tokens.values(), "cvt_unknown"]:
        response = await http.get(f"{API}/me", headers={"Authorization": f"Bearer {secret}"})
        bodies.add(response.content)
    assert len(bodies) == 1
    meta = await http.get(f"{API}/documents/{document_id}", headers=world["alice"].auth)
    assert len(meta.json()["versions"]) == 1  # the unauthenticated PUTs stored nothing


async def check_me(http: httpx.AsyncClient, world: World) -> None:
    response = await http.get(f"{API}/me", headers=world["alice"].auth)
    assert response.status_code == 200
    me = response.json()
    assert me["id"] == str(world["alice"].id)
    assert me["email"] == "alice@example.test"
    assert me["role"] == "client"
    assert me["client_ids"] == [str(world.acme)]


async def test_tokens(
    http: httpx.AsyncClient,
    world: World,
    read_only: dict[str, str],
    dead_tokens: dict[str, str],
) -> None:
    await check_read_only_token(http, world, read_only)
    await check_unauthenticated(http, world, dead_tokens)


# --- folders and clients --------------------------------------------------------------------


async def test_folders(http: httpx.AsyncClient, world: World) -> None:
    sam = world["sam"].auth

    async def create(name: str, parent: str | None = None) -> httpx.Response:
        body: dict[str, str] = {"client_id": str(world.acme), "name": name}
        if parent is not None:
            body["parent_id"] = parent
        return await http.post(f"{API}/folders", json=body, headers=sam)

    tax = str(world.acme_folder)
    q1 = await create("Q1", tax)
    assert q1.status_code == 201, q1.text
    q1_body = q1.json()
    assert q1_body["name"] == "Q1" and q1_body["parent_id"] == tax
    assert q1_body["client_id"] == str(world.acme)
    receipts = await create("Receipts", q1_body["id"])
    assert receipts.status_code == 201 and receipts.json()["parent_id"] == q1_body["id"]

    for duplicate in ("Q1", "q1", "Q1".upper()):
        body = assert_problem(await create(duplicate, tax), 409)
        assert body["title"] == "Conflict"
    assert_problem(await create("TAX 2026"), 409)  # root names clash too, ignoring case
    # The same name under another parent, or at the root, is another folder.
    assert (await create("Q1")).status_code == 201
    assert (await create("Q1", q1_body["id"])).status_code == 201

    listing = (await http.get(f"{API}/folders/{tax}", headers=sam)).json()
    assert listing["id"] == tax and listing["parent_id"] is None
    assert listing["client_id"] == str(world.acme) and listing["name"] == "Tax 2026"
    assert [f["name"] for f in listing["folders"]] == ["Q1"]
    nested = (await http.get(f"{API}/folders/{q1_body['id']}", headers=sam)).json()
    assert sorted(f["name"] for f in nested["folders"]) == ["Q1", "Receipts"]
    root = (await http.get(f"{API}/clients/{world.acme}/folders", headers=sam)).json()
    assert sorted(f["name"] for f in root["folders"]) == ["Q1", "Tax 2026"]

    # Uploads land in the nested folder and are listed there only.
    await upload(http, sam, receipts.json()["id"], "r.pdf", b"%PDF", expect=201)
    deep = (await http.get(f"{API}/folders/{receipts.json()['id']}", headers=sam)).json()
    assert [d["name"] for d in deep["documents"]] == ["r.pdf"]
    assert (await http.get(f"{API}/folders/{tax}", headers=sam)).json()["documents"] == []

    # A parent of another client is no parent at all.
    body = {"client_id": str(world.acme), "parent_id": str(world.globex_folder), "name": "X"}
    assert_problem(await http.post(f"{API}/folders", json=body, headers=world["ada"].auth), 404)


async def test_clients(http: httpx.AsyncClient, world: World) -> None:
    async def names(who: str) -> list[str]:
        response = await http.get(f"{API}/clients", headers=world[who].auth)
        assert response.status_code == 200
        return [c["name"] for c in response.json()["clients"]]

    assert await names("alice") == ["Acme"]
    assert await names("bob") == ["Globex"]
    assert await names("sam") == ["Acme"]
    assert await names("ada") == ["Acme", "Globex"]
    assert await names("otto") == []

    assert_problem(
        await http.post(f"{API}/clients", json={"name": "Initech"}, headers=world["alice"].auth),
        403,
    )
    assert_problem(
        await http.post(f"{API}/clients", json={"name": "Initech"}, headers=world["otto"].auth),
        403,
    )
    response = await http.post(
        f"{API}/clients", json={"name": "Initech"}, headers=world["sam"].auth
    )
    assert response.status_code == 201, response.text
    initech = response.json()
    assert initech["name"] == "Initech" and uuid.UUID(initech["id"])
    assert await names("sam") == ["Acme", "Initech"]
    assert await names("gina") == ["Globex"]  # other staff are not assigned
    assert await names("ada") == ["Acme", "Globex", "Initech"]
    root = await http.get(f"{API}/clients/{initech['id']}/folders", headers=world["sam"].auth)
    assert root.status_code == 200 and root.json()["folders"] == []
    folder = {"client_id": initech["id"], "name": "Onboarding"}
    assert (
        await http.post(f"{API}/folders", json=folder, headers=world["sam"].auth)
    ).status_code == 201
    assert_problem(
        await http.get(f"{API}/clients/{initech['id']}/folders", headers=world["gina"].auth), 404
    )
    assert_problem(
        await http.post(f"{API}/clients", json={"name": "INITECH"}, headers=world["ada"].auth), 409
    )


# --- the audit trail ------------------------------------------------------------------------


async def test_every_access_is_audited(http: httpx.AsyncClient, world: World) -> None:
    alice, sam = world["alice"], world["sam"]
    v1, v2 = payload(3000, seed=7), payload(4000, seed=8)
    document_id = await new_document(http, world, "audited.txt", v1)
    await upload(http, sam.auth, world.acme_folder, "audited.txt", v2, expect=200)

    [created] = await audit_events(http, world, action="document.created", document_id=document_id)
    assert created["actor_id"] == str(alice.id) and created["actor_role"] == "client"
    assert created["client_id"] == str(world.acme)
    assert created["details"]["version"] == 1 and created["details"]["size"] == len(v1)
    assert created["details"]["sha256"] == hashlib.sha256(v1).hexdigest()
    assert created["details"]["name"] == "audited.txt"
    [added] = await audit_events(
        http, world, action="document.version_added", document_id=document_id
    )
    assert added["actor_id"] == str(sam.id)
    assert added["details"]["version"] == 2 and added["details"]["size"] == len(v2)

    assert await audit_events(http, world, action="document.downloaded") == []
    await http.get(content_url(document_id), headers=alice.auth)
    await http.get(content_url(document_id, 1), headers={**alice.auth, "Range": "bytes=10-19"})
    ranged, full = await audit_events(
        http, world, action="document.downloaded", document_id=document_id
    )  # newest first
    assert full["details"]["range"] is None and full["details"]["version"] == 2
    assert full["details"]["bytes"] == len(v2)
    assert ranged["details"]["range"] == "10-19" and ranged["details"]["version"] == 1
    assert ranged["details"]["bytes"] == 10
    assert ranged["actor_id"] == str(alice.id) and ranged["client_id"] == str(world.acme)

    assert await audit_events(http, world, action="document.viewed") == []
    await http.get(f"{API}/documents/{document_id}", headers=sam.auth)
    [viewed] = await audit_events(http, world, action="document.viewed", document_id=document_id)
    assert viewed["actor_id"] == str(sam.id)
    # A HEAD learns the headers (size, type, ETag) and no byte: a view, not a download.
    head = await http.head(content_url(document_id), headers=alice.auth)
    assert head.status_code == 200 and head.content == b""
    downloads = await audit_events(
        http, world, action="document.downloaded", document_id=document_id
    )
    assert len(downloads) == 2
    looked, _ = await audit_events(http, world, action="document.viewed", document_id=document_id)
    assert looked["actor_id"] == str(alice.id)

    await http.delete(f"{API}/documents/{document_id}", headers=sam.auth)
    [deleted] = await audit_events(http, world, action="document.deleted", document_id=document_id)
    assert deleted["actor_id"] == str(sam.id) and deleted["details"]["name"] == "audited.txt"

    # Refused calls record nothing under the document's actions.
    await http.delete(f"{API}/documents/{document_id}", headers=alice.auth)
    await http.get(content_url(document_id), headers=world["bob"].auth)
    # Seven events, and the completion of the one full download.
    assert len(await audit_events(http, world, action="document.*", document_id=document_id)) == 8

    verify = await http.get(f"{API}/audit/verify", headers=world["otto"].auth)
    assert verify.status_code == 200
    assert verify.json()["ok"] is True and verify.json()["events"] > 5
