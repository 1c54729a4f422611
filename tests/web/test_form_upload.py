"""Uploading without JavaScript: the folder's plain multipart form, streamed into the
encryptor as it arrives (no `request.form()`, no temporary file), CSRF token first."""

from __future__ import annotations

import hashlib
import tempfile
import tracemalloc
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from starlette.requests import Request
from starlette.types import ASGIApp, Message

from tests.fixtures.app import World
from tests.fixtures.multipart import MULTIPART, Part, multipart, post_form, streamed
from tests.fixtures.pages import account_csrf
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import Document, Version
from web.services import Services

MiB = 1024 * 1024


async def documents_in(services: Services, folder_id: uuid.UUID) -> dict[str, Document]:
    async with transaction(services.sessions) as session:
        found = await session.execute(select(Document).where(col(Document.folder_id) == folder_id))
        return {document.name: document for document in found.scalars()}


async def version_count(services: Services) -> int:
    async with transaction(services.sessions) as session:
        return len((await session.execute(select(Version))).scalars().all())


async def content_of(http: httpx.AsyncClient, document_id: uuid.UUID, version: int) -> bytes:
    response = await http.get(f"/api/v1/documents/{document_id}/content?version={version}")
    assert response.status_code == 200, response.text
    return response.content


# --- Storing ---------------------------------------------------------------------------------


async def test_several_files_without_javascript_come_back_byte_for_byte(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    files = {
        "report.pdf": b"%PDF-1.7 " + bytes(range(256)) * 40,
        "Steuererklärung 2026 – 年度报告.xlsx": "数据 ✓ Ωμέγα".encode() * 1000,
        "empty.txt": b"",
        'a "quoted" name.txt': b"quoted\r\n--not a boundary\r\n",
    }
    parts: list[Part] = [("csrf_token", None, csrf.encode())]
    parts += [("file", name, data) for name, data in files.items()]
    again: list[Part]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/folders/{world.acme_folder}?done=uploaded&count=4"

    stored = await documents_in(services, world.acme_folder)
    assert set(stored) == set(files)
    for name, data in files.items():
        assert await content_of(http, stored[name].id, 1) == data

    # The same name again is the next version of the same document.
    again = [("csrf_token", None, csrf.encode()), ("file", "report.pdf", b"second edition")]
    response = await post_form(http, world.acme_folder, again)
    assert response.status_code == 303
    assert response.headers["location"].endswith("count=1")
    assert await content_of(http, stored["report.pdf"].id, 2) == b"second edition"


async def test_the_upload_is_audited_like_any_other(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "a.txt", b"abc")]
    assert (await post_form(http, world.acme_folder, parts)).status_code == 303
    events = await http.get("/api/v1/audit?action=document.created", headers=world["ada"].auth)
    assert events.status_code == 200, events.text
    (event,) = events.json()["events"]
    assert event["details"]["name"] == "a.txt"
    assert event["actor_id"] == str(world["alice"].id)


# --- Refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
async def test_a_missing_or_wrong_csrf_token_is_a_403_page_and_stores_nothing(
    http: httpx.AsyncClient, world: World, services: Services, token: str | None
) -> None:
    await sign_in(http, world["alice"])
    parts: list[Part] = [] if token is None else [("csrf_token", None, token.encode())]
    parts.append(("file", "evil.txt", b"planted"))
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This form has expired" in response.text
    assert await documents_in(services, world.acme_folder) == {}
    assert await version_count(services) == 0


async def test_a_file_before_the_token_is_refused(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [("file", "early.txt", b"too soon"), ("csrf_token", None, csrf.encode())]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 403
    assert await version_count(services) == 0


async def test_a_form_from_another_site_is_refused(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "x.txt", b"x")]
    response = await http.post(
        f"/folders/{world.acme_folder}/upload",
        content=b"".join(multipart(parts)),
        headers={"Content-Type": MULTIPART, "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert await version_count(services) == 0


async def test_signed_out_goes_to_the_sign_in_page(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    parts: list[Part] = [("csrf_token", None, b"whatever"), ("file", "x.txt", b"x")]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert await version_count(services) == 0


async def test_another_clients_folder_is_not_found(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "x.txt", b"x")]
    response = await post_form(http, world.globex_folder, parts)
    assert response.status_code == 404
    assert "Not found" in response.text
    assert await version_count(services) == 0
    response = await post_form(http, uuid.uuid4(), parts)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("hostile", "sentence"),
    [
        ("invoice\u202efdp.exe", "bidirectional control characters"),
        ("CON.txt", "Windows device name"),
        ("..", "must not be “.” or “..”"),
        ("line\nbreak.txt", "control or line-break characters"),
        ("trailing.", "must not end with a dot or a space"),
    ],
)
async def test_a_hostile_name_is_a_readable_error_and_earlier_files_stay(
    http: httpx.AsyncClient, world: World, services: Services, hostile: str, sentence: str
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [
        ("csrf_token", None, csrf.encode()),
        ("file", "first.txt", b"kept"),
        ("file", hostile, b"refused"),
        ("file", "after.txt", b"not reached"),
    ]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert sentence in response.text
    assert "File number 2 of the form was refused." in response.text
    assert "first.txt" in response.text, "the page says which files were stored"
    if len(hostile) > 2:
        assert hostile not in response.text, "a hostile name is never echoed"
    stored = await documents_in(services, world.acme_folder)
    assert set(stored) == {"first.txt"}
    assert await content_of(http, stored["first.txt"].id, 1) == b"kept"


async def test_no_file_chosen_says_so(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    # What a browser sends for a file input left empty: a part with an empty file name.
    parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "", b"")]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 422
    assert "No file was chosen" in response.text


async def test_a_file_over_the_size_limit_is_refused(
    http: httpx.AsyncClient, world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(type(services), "max_upload_size", property(lambda _self: 1000))
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [
        ("csrf_token", None, csrf.encode()),
        ("file", "small.txt", b"s" * 1000),
        ("file", "big.bin", b"b" * 1001),
    ]
    response = await post_form(http, world.acme_folder, parts)
    assert response.status_code == 422
    assert "A file must not be larger than" in response.text
    assert set(await documents_in(services, world.acme_folder)) == {"small.txt"}


async def test_a_cut_off_body_leaves_no_version(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    parts: list[Part] = [
        ("csrf_token", None, csrf.encode()),
        ("file", "whole.txt", b"complete"),
        ("file", "cut.bin", [b"x" * 100_000, b"y" * 100_000]),
    ]
    # The body stops inside the second file: its closing boundary never comes.
    body = list(multipart(parts, close=False))[:-1]
    response = await http.post(
        f"/folders/{world.acme_folder}/upload",
        content=streamed(body),
        headers={"Content-Type": MULTIPART},
    )
    assert response.status_code == 400
    stored = await documents_in(services, world.acme_folder)
    assert set(stored) == {"whole.txt"}
    assert await version_count(services) == 1
    assert not list((services.settings.data_dir / "objects").rglob("*cut*"))


async def test_a_browser_that_goes_away_leaves_no_version(
    app: ASGIApp, http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    head = b"".join(
        multipart([("csrf_token", None, csrf.encode()), ("file", "gone.bin", b"")], close=False)
    )[:-2]  # up to the file's data
    messages: list[Message] = [
        {"type": "http.request", "body": head, "more_body": True},
        {"type": "http.request", "body": b"z" * (6 * MiB), "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/folders/{world.acme_folder}/upload",
        "raw_path": f"/folders/{world.acme_folder}/upload".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", MULTIPART.encode()),
            (b"cookie", cookie.encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert await version_count(services) == 0
    assert await documents_in(services, world.acme_folder) == {}


# --- Streaming -------------------------------------------------------------------------------


async def test_a_large_upload_streams_without_temp_files_or_unbounded_memory(
    http: httpx.AsyncClient, world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)

    def no_spooling(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a form part was spooled")

    # Starlette's form parser spools file parts to SpooledTemporaryFile; neither may run.
    monkeypatch.setattr(Request, "form", no_spooling)
    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_spooling)

    size = 64 * MiB
    digest = hashlib.sha256()

    def generated() -> Iterable[bytes]:
        block = 256 * 1024
        for i in range(size // block):
            chunk = hashlib.sha256(i.to_bytes(4, "big")).digest() * (block // 32)
            digest.update(chunk)
            yield chunk

    parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "big.bin", generated())]
    tracemalloc.start()
    try:
        response = await post_form(http, world.acme_folder, parts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 303, response.text
    # Parts of 5 MiB, a few in flight: far below the file's 64 MiB.
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"

    document = (await documents_in(services, world.acme_folder))["big.bin"]
    meta = await http.get(f"/api/v1/documents/{document.id}", headers=world["alice"].auth)
    (version,) = meta.json()["versions"]
    assert version["size"] == size
    assert version["sha256"] == digest.hexdigest()
    downloaded = hashlib.sha256()
    async with http.stream("GET", f"/api/v1/documents/{document.id}/content") as body:
        async for chunk in body.aiter_bytes():
            downloaded.update(chunk)
    assert downloaded.hexdigest() == digest.hexdigest()
