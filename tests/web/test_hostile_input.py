"""Hostile input over the API: names, broken and oversized bodies, malformed JSON.

Whatever is refused leaves nothing behind: no document, no version, no stored object and no
unfinished multipart upload.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Message

from storage import LocalObjectStore
from tests.fixtures.app import World
from web.app import create_app
from web.services import Services
from web.settings import Settings

API = "/api/v1"
PROBLEM = "application/problem+json"


def file_url(folder_id: uuid.UUID | str, name: str) -> str:
    # Dots too, or httpx would resolve `.`/`..` segments before the request is sent.
    return f"{API}/folders/{folder_id}/files/{quote(name, safe='').replace('.', '%2E')}"


def assert_problem(response: httpx.Response, status: int, where: str = "") -> dict[str, Any]:
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), where
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"], where
    return body


async def assert_nothing_stored(
    http: httpx.AsyncClient, world: World, services: Services, *, documents: int = 0
) -> None:
    listing = await http.get(f"{API}/folders/{world.acme_folder}", headers=world["ada"].auth)
    assert len(listing.json()["documents"]) == documents, listing.text
    objects = [obj.key async for obj in services.store.list("")]
    assert len(objects) == documents, objects
    assert await services.store.list_multipart_uploads("") == []


# (name, rule) pairs refused for files, folders and clients alike.
BAD_NAMES: list[tuple[str, str]] = [
    ("..", "dot_name"),
    (".", "dot_name"),
    ("a/b", "path_separator"),
    ("../../etc/passwd", "path_separator"),
    ("a\\b", "path_separator"),
    ("..\\boot.ini", "path_separator"),
    ("invoice.pdf\x00.exe", "control_character"),
    ("\x00", "control_character"),
    ("a\x01b", "control_character"),
    ("a\x1fb", "control_character"),
    ("a\x7fb", "control_character"),
    ("a\x85b", "control_character"),
    ("a\tb.txt", "control_character"),
    ("a.txt\rSet-Cookie: x=1", "control_character"),
    ("line\u2028break", "control_character"),
    ("invoice\u202efdp.exe", "bidi_control"),
    ("a\u2066b", "bidi_control"),
    ("a" * 256, "too_long"),
    ("é" * 128, "too_long"),  # 128 characters, 256 bytes
    ("CON", "reserved_name"),
    ("con.txt", "reserved_name"),
    ("nul .txt", "reserved_name"),
    ("LPT1.tar.gz", "reserved_name"),
    ("report.pdf.", "trailing_dot_or_space"),
    ("report.pdf ", "trailing_dot_or_space"),
    (" report.pdf", "leading_whitespace"),
    ("   ", "empty"),
]


async def test_bad_file_names(http: httpx.AsyncClient, world: World, services: Services) -> None:
    for name, rule in BAD_NAMES:
        response = await http.put(
            file_url(world.acme_folder, name), content=b"payload", headers=world["alice"].auth
        )
        body = assert_problem(response, 422, repr(name))
        assert body["rule"] == rule, repr(name)
        assert body["title"] == "Invalid name"
        # The explanation never echoes the hostile name back (a device name it may).
        if len(name) > 2 and rule != "reserved_name":
            assert name not in body["detail"], repr(name)
    # A line feed never reaches the name rules: the route's `{name:path}` pattern does not
    # match across it, so the router answers 404. Either way it is refused, as problem+json.
    for name in ("a.txt\r\nSet-Cookie: x=1", "\n", "a\nb"):
        response = await http.put(
            file_url(world.acme_folder, name), content=b"payload", headers=world["alice"].auth
        )
        assert response.status_code in (404, 422), repr(name)
        assert response.headers["content-type"].startswith(PROBLEM), repr(name)
    # The empty name: the route matches with nothing after `files/`.
    response = await http.put(
        f"{API}/folders/{world.acme_folder}/files/", content=b"x", headers=world["alice"].auth
    )
    assert assert_problem(response, 422, "empty")["rule"] == "empty"
    await assert_nothing_stored(http, world, services)
    created = await http.get(
        f"{API}/audit", params={"action": "document.created"}, headers=world["otto"].auth
    )
    assert created.json()["events"] == []


async def test_folder_and_client_names(http: httpx.AsyncClient, world: World) -> None:
    sam, ada = world["sam"].auth, world["ada"].auth
    for name, rule in [*BAD_NAMES, ("", "empty")]:
        folder = {"client_id": str(world.acme), "parent_id": str(world.acme_folder), "name": name}
        response = await http.post(f"{API}/folders", json=folder, headers=sam)
        assert assert_problem(response, 422, repr(name))["rule"] == rule, repr(name)
        if rule == "reserved_name" or name.endswith("."):
            continue  # file-system rules: a client's name is shown, never written to a disk
        response = await http.post(f"{API}/clients", json={"name": name}, headers=ada)
        assert assert_problem(response, 422, repr(name))["rule"] == rule, repr(name)
    listing = (await http.get(f"{API}/folders/{world.acme_folder}", headers=sam)).json()
    assert listing["folders"] == []
    clients = (await http.get(f"{API}/clients", headers=ada)).json()["clients"]
    assert [c["name"] for c in clients] == ["Acme", "Globex"]
    hoshino = await http.post(f"{API}/clients", json={"name": "Hoshino Trading Co."}, headers=ada)
    assert hoshino.status_code == 201, hoshino.text
    assert hoshino.json()["name"] == "Hoshino Trading Co."
    await check_injection_names_come_back_verbatim(http, world)


INJECTION_NAMES = [
    "<img src=x onerror=alert(1)>.pdf",
    "{{7*7}}.pdf",
    "${7*7}.pdf",
    "<%= 7*7 %>.pdf",
    "'; DROP TABLE documents; --.pdf",
    '"quoted" & <b>bold<b>.pdf',
    "%00%2e%2e%2f.pdf",  # percent signs kept as text, never decoded twice
]


async def check_injection_names_come_back_verbatim(http: httpx.AsyncClient, world: World) -> None:
    alice = world["alice"].auth
    ids: dict[str, str] = {}
    for name in INJECTION_NAMES:
        response = await http.put(file_url(world.acme_folder, name), content=b"x", headers=alice)
        assert response.status_code == 201, f"{name}: {response.text}"
        ids[name] = response.json()["document_id"]
    for name, document_id in ids.items():
        meta = await http.get(f"{API}/documents/{document_id}", headers=alice)
        assert meta.headers["content-type"] == "application/json"
        assert meta.json()["name"] == name
        assert "49.pdf" not in meta.text  # {{7*7}}, ${7*7}, <%= 7*7 %> were not evaluated
    listing = await http.get(f"{API}/folders/{world.acme_folder}", headers=alice)
    assert sorted(d["name"] for d in listing.json()["documents"]) == sorted(INJECTION_NAMES)
    # The same names work for folders and clients, and come back as sent.
    for name in INJECTION_NAMES[:2]:
        folder = {"client_id": str(world.acme), "name": name}
        response = await http.post(f"{API}/folders", json=folder, headers=world["sam"].auth)
        assert response.status_code == 201 and response.json()["name"] == name
        response = await http.post(f"{API}/clients", json={"name": name}, headers=world["ada"].auth)
        assert response.status_code == 201 and response.json()["name"] == name


# --- bodies that break off or run over ------------------------------------------------------


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the local store's writes, to show a failed upload did start."""
    calls = {"upload_part": 0, "abort_multipart": 0, "complete_multipart": 0, "put_new": 0}
    for method in calls:
        original = getattr(LocalObjectStore, method)

        def counted(original: Any = original, method: str = method) -> Any:
            async def wrapper(self: LocalObjectStore, *args: Any) -> Any:
                calls[method] += 1
                return await original(self, *args)

            return wrapper

        monkeypatch.setattr(LocalObjectStore, method, counted())
    return calls


async def check_body_failing_mid_stream_leaves_nothing(
    app: ASGIApp, world: World, services: Services, store_calls: dict[str, int]
) -> None:
    async def body() -> AsyncIterator[bytes]:
        # More than one part is already on its way: 11 MiB, as a body of unknown length may
        # bring the 100 GiB limit, which 10,000 of the configured 5 MiB parts would not hold.
        yield b"a" * 12 * 1024 * 1024
        yield b"b" * 1024
        raise ConnectionResetError("the client's disk died")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.put(
            file_url(world.acme_folder, "broken.bin"), content=body(), headers=world["alice"].auth
        )
        assert response.status_code >= 400
        assert response.headers["content-type"].startswith(PROBLEM)
        assert b"disk died" not in response.content
        assert store_calls["upload_part"] >= 1  # a part was written ...
        assert store_calls["abort_multipart"] == 1  # ... and thrown away
        assert store_calls["complete_multipart"] == 0
        await assert_nothing_stored(http, world, services)
        # And the same name uploads cleanly afterwards.
        response = await http.put(
            file_url(world.acme_folder, "broken.bin"), content=b"ok", headers=world["alice"].auth
        )
        assert response.status_code == 201
        await assert_nothing_stored(http, world, services, documents=1)


async def raw_put(
    app: ASGIApp,
    url: str,
    auth: dict[str, str],
    messages: list[Message],
    content_length: int | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Drive the app directly so the request can lie about its length or break off."""
    path = httpx.URL("http://testserver" + url)
    headers = [(k.lower().encode(), v.encode()) for k, v in auth.items()]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path.path,
        "raw_path": path.raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }
    incoming = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, body


def chunk(data: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_bodies_that_break_off_leave_nothing(
    app: ASGIApp,
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    store_calls: dict[str, int],
) -> None:
    """The body raises mid-stream, the client disconnects, or Content-Length lies."""
    await check_body_failing_mid_stream_leaves_nothing(app, world, services, store_calls)
    store_calls.update(dict.fromkeys(store_calls, 0))
    # From here on, `broken.bin` exists: one document and one object.
    url, auth = file_url(world.acme_folder, "lies.bin"), world["alice"].auth
    cases: list[tuple[str, list[Message], int | None, int]] = [
        # The connection drops part-way (more_body, then http.disconnect).
        ("disconnect", [chunk(b"x" * 100_000, True)], None, 400),
        ("disconnect after a part", [chunk(b"x" * 12 * 1024 * 1024, True)], None, 400),
        # Content-Length promises more than arrives before the body ends.
        ("short body", [chunk(b"x" * 10, False)], 1000, 400),
        # Content-Length promises less than arrives.
        ("long body", [chunk(b"x" * 10, True), chunk(b"y" * 10, False)], 15, 413),
    ]
    for where, messages, length, status in cases:
        code, headers, body = await raw_put(app, url, auth, messages, length)
        assert code == status, f"{where}: {code} {body!r}"
        assert headers["content-type"].startswith(PROBLEM), where
        assert json.loads(body)["status"] == status
        await assert_nothing_stored(http, world, services, documents=1)
    assert store_calls["upload_part"] >= 1  # the 12 MiB one got a part out before it broke off
    # ...so it alone had a multipart upload to abort; the others, under a part, would have
    # been one PUT once whole, and sent nothing.
    assert store_calls["abort_multipart"] == 1
    assert store_calls["complete_multipart"] == 0
    assert store_calls["put_new"] == 0


@pytest.fixture
async def tiny_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with an upload limit of 0 bytes: `max_size_gib` is validated to be at least 1,
    which `model_copy` does not re-check, so any non-empty body is too large."""
    tiny = settings.model_copy(
        update={"uploads": settings.uploads.model_copy(update={"max_size_gib": 0})}
    )
    async with LifespanManager(create_app(tiny)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_body_over_the_limit(
    tiny_http: httpx.AsyncClient, http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth

    async def streamed() -> AsyncIterator[bytes]:
        yield b""
        yield b"z"

    # Declared too large: refused before a byte is read. Streamed without a length: refused
    # when the limit is crossed.
    for content in (b"z", b"z" * 100_000):
        response = await tiny_http.put(
            file_url(world.acme_folder, "big.bin"), content=content, headers=auth
        )
        assert_problem(response, 413, "declared")
    response = await tiny_http.put(
        file_url(world.acme_folder, "big.bin"), content=streamed(), headers=auth
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "streamed")
    await assert_nothing_stored(http, world, services)
    # Exactly at the limit (here: nothing at all) is fine.
    response = await tiny_http.put(file_url(world.acme_folder, "empty"), content=b"", headers=auth)
    assert response.status_code == 201, response.text


# --- JSON bodies ----------------------------------------------------------------------------


async def test_malformed_json_bodies(http: httpx.AsyncClient, world: World) -> None:
    ada = {**world["ada"].auth, "Content-Type": "application/json"}
    acme = str(world.acme)
    cases: list[tuple[str, bytes, int]] = [
        ("/clients", b"[1, 2]", 400),
        ("/clients", b'"Initech"', 400),
        ("/clients", b"null", 400),
        ("/clients", b"42", 400),
        ("/clients", b"{", 400),
        ("/clients", b'{"name": "a"} trailing', 400),
        ("/clients", b"\xff\xfe{}", 400),
        ("/clients", b'{"name": "' + b"a" * 70_000 + b'"}', 413),
        ("/clients", b" " * (64 * 1024 + 1), 413),
        ("/clients", b"{}", 422),
        ("/clients", b'{"name": null}', 422),
        ("/clients", b'{"name": 5}', 422),
        ("/clients", b'{"name": ["Initech"]}', 422),
        ("/clients", b'{"name": {"$ne": ""}}', 422),
        ("/clients", b'{"name": true}', 422),
        ("/folders", b'{"name": "X"}', 422),
        ("/folders", json.dumps({"client_id": 5, "name": "X"}).encode(), 422),
        ("/folders", json.dumps({"client_id": acme, "name": 5}).encode(), 422),
        ("/folders", json.dumps({"client_id": acme, "parent_id": 7, "name": "X"}).encode(), 422),
        ("/folders", json.dumps({"client_id": [acme], "name": "X"}).encode(), 422),
        ("/folders", b"[]", 400),
    ]
    for path, content, status in cases:
        response = await http.post(f"{API}{path}", content=content, headers=ada)
        body = assert_problem(response, status, f"{path} {content[:40]!r}")
        if status == 422:
            assert body["field"] in ("name", "client_id", "parent_id"), content[:40]
    # Nothing was created by any of them.
    clients = (await http.get(f"{API}/clients", headers=ada)).json()["clients"]
    assert [c["name"] for c in clients] == ["Acme", "Globex"]
    root = (await http.get(f"{API}/clients/{acme}/folders", headers=ada)).json()
    assert [f["name"] for f in root["folders"]] == ["Tax 2026"]
    # A body just under the limit is read normally.
    padded = b'{"name": "Initech"' + b" " * (64 * 1024 - 20) + b"}"
    assert len(padded) <= 64 * 1024
    assert (await http.post(f"{API}/clients", content=padded, headers=ada)).status_code == 201
