"""The document API end to end: upload, versions, ranged download, validators, trash, roles,
tokens, folders, clients and the audit events each call leaves behind."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.documents import API, upload
from vault import accounts
from vault.db import transaction
from vault.models import TokenScope, User
from web.services import Services

PROBLEM = "application/problem+json"
MiB = 1024 * 1024
SEGMENT = 64 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def new_document(
    http: httpx.AsyncClient, world: World, name: str, data: bytes, who: str = "alice"
) -> str:
    response = await upload(http, world[who].auth, world.acme_folder, name, data, expect=201)
    document_id: str = response.json()["document_id"]
    return document_id


def content_url(document_id: str, version: int | None = None) -> str:
    suffix = f"?version={version}" if version is not None else ""
    return f"{API}/documents/{document_id}/content{suffix}"


async def audit_events(
    http: httpx.AsyncClient, world: World, **filters: str
) -> list[dict[str, Any]]:
    response = await http.get(f"{API}/audit", params=filters, headers=world["otto"].auth)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    return body


def disposition_filename(header: str) -> str:
    match = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    assert match is not None, header
    return unquote(match.group(1), errors="strict")


# --- round trip -----------------------------------------------------------------------------


ROUND_TRIP_SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 12 * MiB + 12345]


async def test_round_trip(http: httpx.AsyncClient, world: World) -> None:
    """Sizes around the 64 KiB segment and one over two 5 MiB parts (three parts)."""
    for size in ROUND_TRIP_SIZES:
        data = payload(size, seed=size)
        name = f"data-{size}.bin"
        response = await upload(http, world["alice"].auth, world.acme_folder, name, data)
        assert response.status_code == 201, (size, response.text)
        body = response.json()
        assert body["version"] == 1
        assert response.headers["location"] == f"{API}/documents/{body['document_id']}"

        download = await http.get(content_url(body["document_id"]), headers=world["sam"].auth)
        assert download.status_code == 200, size
        assert download.headers["content-length"] == str(size)
        assert len(download.content) == size
        assert download.content == data, size

        meta = await http.get(f"{API}/documents/{body['document_id']}", headers=world["alice"].auth)
        assert meta.status_code == 200
        [version] = meta.json()["versions"]
        assert version["size"] == size
        assert version["sha256"] == hashlib.sha256(data).hexdigest()


async def test_versions(http: httpx.AsyncClient, world: World) -> None:
    old, new = payload(70_000, seed=1), payload(1000, seed=2)
    first = await upload(http, world["alice"].auth, world.acme_folder, "plan.txt", old, expect=201)
    second = await upload(http, world["sam"].auth, world.acme_folder, "plan.txt", new, expect=200)
    document_id = first.json()["document_id"]
    assert second.json() == {"document_id": document_id, "version": 2}

    meta = await http.get(f"{API}/documents/{document_id}", headers=world["alice"].auth)
    assert meta.status_code == 200
    doc = meta.json()
    assert doc["id"] == document_id and doc["name"] == "plan.txt"
    assert doc["folder_id"] == str(world.acme_folder) and doc["client_id"] == str(world.acme)
    versions = doc["versions"]
    assert [v["number"] for v in versions] == [1, 2]
    assert [v["size"] for v in versions] == [len(old), len(new)]
    assert [v["sha256"] for v in versions] == [
        hashlib.sha256(old).hexdigest(),
        hashlib.sha256(new).hexdigest(),
    ]
    assert [v["uploaded_by"] for v in versions] == [str(world["alice"].id), str(world["sam"].id)]
    assert all(v["created_at"] for v in versions)

    auth = world["alice"].auth
    assert (await http.get(content_url(document_id), headers=auth)).content == new
    assert (await http.get(content_url(document_id, 2), headers=auth)).content == new
    assert (await http.get(content_url(document_id, 1), headers=auth)).content == old
    for bad in ("3", "0", "-1", "abc", "1.0", ""):
        response = await http.get(f"{content_url(document_id)}?version={bad}", headers=auth)
        assert_problem(response, 404)

    await check_same_name_ignoring_case_is_a_new_version(http, world)


async def check_same_name_ignoring_case_is_a_new_version(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    first = await upload(http, auth, world.acme_folder, "Report.PDF", b"one", expect=201)
    second = await upload(http, auth, world.acme_folder, "report.pdf", b"two", expect=200)
    assert second.json() == {"document_id": first.json()["document_id"], "version": 2}
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=auth)).json()
    [listed] = [d for d in folder["documents"] if d["name"].casefold() == "report.pdf"]
    assert listed["name"] == "Report.PDF" and listed["version"] == 2


# --- ranges and validators ------------------------------------------------------------------

RANGE_SIZE = 200_000


RANGE_CASES: list[tuple[str, int, tuple[int, int] | None]] = [
    ("bytes=0-99", 206, (0, 100)),  # prefix
    ("bytes=-100", 206, (RANGE_SIZE - 100, RANGE_SIZE)),  # suffix
    ("bytes=199990-", 206, (199_990, RANGE_SIZE)),  # open-ended
    ("bytes=5-5", 206, (5, 6)),  # single byte
    (f"bytes={SEGMENT - 10}-{SEGMENT + 9}", 206, (SEGMENT - 10, SEGMENT + 10)),  # segment edge
    (f"bytes={2 * SEGMENT - 1}-{2 * SEGMENT}", 206, (2 * SEGMENT - 1, 2 * SEGMENT + 1)),
    (f"bytes={SEGMENT}-{SEGMENT}", 206, (SEGMENT, SEGMENT + 1)),  # first byte of a segment
    ("bytes=199990-999999", 206, (199_990, RANGE_SIZE)),  # end clamped
    ("bytes=-999999", 206, (0, RANGE_SIZE)),  # suffix longer than the file
    ("bytes=0-", 206, (0, RANGE_SIZE)),
    ("bytes=200000-", 416, None),  # starts at the end
    ("bytes=999999-1000000", 416, None),
    ("bytes=-0", 416, None),
    ("bytes=0-1,5-6", 200, (0, RANGE_SIZE)),  # multiple ranges: ignored
    ("bytes=abc", 200, (0, RANGE_SIZE)),  # invalid syntax: ignored
    ("bytes=5-1", 200, (0, RANGE_SIZE)),  # last < first: invalid, ignored
    ("bytes=", 200, (0, RANGE_SIZE)),
    ("items=0-1", 200, (0, RANGE_SIZE)),  # unknown unit: ignored
]


async def test_range(http: httpx.AsyncClient, world: World) -> None:
    data = payload(RANGE_SIZE, seed=3)
    document_id = await new_document(http, world, "big.bin", data)
    for header, status, expected in RANGE_CASES:
        response = await http.get(
            content_url(document_id), headers={**world["alice"].auth, "Range": header}
        )
        assert response.status_code == status, header
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["etag"]
        if expected is None:
            assert response.headers["content-range"] == f"bytes */{RANGE_SIZE}", header
            assert response.content == b""
            continue
        start, end = expected
        assert response.content == data[start:end], header
        assert response.headers["content-length"] == str(end - start), header
        if status == 206:
            assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{RANGE_SIZE}"
        else:
            assert "content-range" not in response.headers, header
    await check_range_on_old_version_and_empty_file(http, world)


async def check_range_on_old_version_and_empty_file(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    old = payload(1000, seed=4)
    document_id = await new_document(http, world, "r.bin", old)
    await upload(http, auth, world.acme_folder, "r.bin", b"new", expect=200)
    response = await http.get(content_url(document_id, 1), headers={**auth, "Range": "bytes=-10"})
    assert response.status_code == 206
    assert response.content == old[-10:]
    assert response.headers["content-range"] == "bytes 990-999/1000"

    empty = await new_document(http, world, "empty.bin", b"")
    response = await http.get(content_url(empty), headers={**auth, "Range": "bytes=0-"})
    assert response.status_code == 200 and response.content == b""


async def test_etag_and_conditional_requests(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    v1, v2 = payload(5000, seed=5), payload(5000, seed=6)
    document_id = await new_document(http, world, "e.bin", v1)
    tag1 = (await http.get(content_url(document_id), headers=auth)).headers["etag"]
    assert re.fullmatch(r'"[\x21\x23-\x7e]+"', tag1)  # strong, well-formed
    assert (await http.get(content_url(document_id), headers=auth)).headers["etag"] == tag1
    assert (
        await http.get(content_url(document_id), headers={**auth, "Range": "bytes=0-9"})
    ).headers["etag"] == tag1

    await upload(http, auth, world.acme_folder, "e.bin", v2, expect=200)
    tag2 = (await http.get(content_url(document_id), headers=auth)).headers["etag"]
    assert tag2 != tag1
    assert (await http.get(content_url(document_id, 1), headers=auth)).headers["etag"] == tag1
    assert tag1.strip('"') not in (hashlib.sha256(v1).hexdigest(),)  # opaque, not the digest

    # If-None-Match: the current tag (strong or weak form, or in a list) -> 304, no body.
    for value in (tag2, f"W/{tag2}", f'"nope", {tag2}', "*"):
        response = await http.get(
            content_url(document_id), headers={**auth, "If-None-Match": value}
        )
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == tag2
    stale = await http.get(content_url(document_id), headers={**auth, "If-None-Match": tag1})
    assert stale.status_code == 200 and stale.content == v2
    old = await http.get(content_url(document_id, 1), headers={**auth, "If-None-Match": tag1})
    assert old.status_code == 304

    # If-Range: a stale or weak validator means "send it all"; the current one allows 206.
    ranged = {**auth, "Range": "bytes=0-9"}
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": tag1})
    assert response.status_code == 200 and response.content == v2
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": f"W/{tag2}"})
    assert response.status_code == 200 and response.content == v2
    response = await http.get(
        content_url(document_id), headers={**ranged, "If-Range": "Tue, 01 Jan 2030 00:00:00 GMT"}
    )
    assert response.status_code == 200
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": tag2})
    assert response.status_code == 206 and response.content == v2[:10]


# --- how files are served -------------------------------------------------------------------


DISPOSITION_NAMES = [
    "گزارش.pdf",
    "報告書 2026.pdf",
    "📄 report 👨‍👩‍👧.pdf",
    'a"b;c.pdf',
    "50% off=yes.txt",
]


async def check_content_disposition_carries_the_name(http: httpx.AsyncClient, world: World) -> None:
    for name in DISPOSITION_NAMES:
        document_id = await new_document(http, world, name, b"x")
        response = await http.get(content_url(document_id), headers=world["alice"].auth)
        assert response.status_code == 200
        header = response.headers["content-disposition"]
        header.encode("ascii")  # the field value itself is plain ASCII
        assert header.startswith("attachment;"), name
        assert disposition_filename(header) == name
        fallback = re.search(r'filename="([^"]*)"', header)
        assert fallback is not None, name
        assert ";" not in fallback.group(1) and "%" not in fallback.group(1), name
        meta = await http.get(f"{API}/documents/{document_id}", headers=world["alice"].auth)
        assert meta.json()["name"] == name


SERVED_TYPES: list[tuple[str, str | None, str]] = [
    ("x.html", None, "application/octet-stream"),
    ("x.svg", None, "application/octet-stream"),
    ("x.js", None, "application/octet-stream"),
    ("x.pdf", None, "application/pdf"),
    ("y.pdf", "text/html", "application/octet-stream"),  # a declared type cannot smuggle
    ("x.bin", "image/svg+xml", "application/octet-stream"),
    ("x.png", None, "image/png"),
]


async def check_served_content_type_and_safety_headers(
    http: httpx.AsyncClient, world: World
) -> None:
    for name, declared, served in SERVED_TYPES:
        headers = {"Content-Type": declared} if declared else None
        response = await upload(
            http,
            world["alice"].auth,
            world.acme_folder,
            name,
            b"<svg onload=alert(1)><script>alert(1)</script>",
            expect=201,
            headers=headers,
        )
        document_id = response.json()["document_id"]
        for extra in ({}, {"Range": "bytes=0-3"}):
            download = await http.get(
                content_url(document_id), headers={**world["alice"].auth, **extra}
            )
            assert download.status_code in (200, 206)
            assert download.headers["content-type"].split(";")[0] == served, name
            assert download.headers["content-disposition"].startswith("attachment;")
            assert download.headers["x-content-type-options"] == "nosniff"
            csp = [d.strip() for d in download.headers["content-security-policy"].split(";")]
            assert "sandbox" in csp and "default-src 'none'" in csp, name
            assert "no-store" in download.headers["cache-control"]


async def test_how_files_are_served(http: httpx.AsyncClient, world: World) -> None:
    await check_content_disposition_carries_the_name(http, world)
    await check_served_content_type_and_safety_headers(http, world)


# --- trash ----------------------------------------------------------------------------------


async def test_delete(http: httpx.AsyncClient, world: World) -> None:
    document_id = await new_document(http, world, "gone.txt", b"old bytes")
    sam = world["sam"].auth
    response = await http.delete(f"{API}/documents/{document_id}", headers=sam)
    assert response.status_code == 204 and response.content == b""

    assert_problem(await http.get(f"{API}/documents/{document_id}", headers=sam), 404)
    assert_problem(await http.get(content_url(document_id), headers=sam), 404)
    assert_problem(await http.get(content_url(document_id, 1), headers=sam), 404)
    assert_problem(await http.delete(f"{API}/documents/{document_id}", headers=sam), 404)
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=sam)).json()
    assert folder["documents"] == []

    again = await upload(http, sam, world.acme_folder, "gone.txt", b"new bytes", expect=201)
    new_id = again.json()["document_id"]
    assert new_id != document_id and again.json()["version"] == 1
    assert (await http.get(content_url(new_id), headers=sam)).content == b"new bytes"
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=sam)).json()
    assert [d["id"] for d in folder["documents"]] == [new_id]


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

    await http.delete(f"{API}/documents/{document_id}", headers=sam.auth)
    [deleted] = await audit_events(http, world, action="document.deleted", document_id=document_id)
    assert deleted["actor_id"] == str(sam.id) and deleted["details"]["name"] == "audited.txt"

    # Refused calls record nothing under the document's actions.
    await http.delete(f"{API}/documents/{document_id}", headers=alice.auth)
    await http.get(content_url(document_id), headers=world["bob"].auth)
    # Six events, and the completion of the one full download.
    assert len(await audit_events(http, world, action="document.*", document_id=document_id)) == 7

    verify = await http.get(f"{API}/audit/verify", headers=world["otto"].auth)
    assert verify.status_code == 200
    assert verify.json()["ok"] is True and verify.json()["events"] > 5
