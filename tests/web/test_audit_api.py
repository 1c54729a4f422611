"""The auditor API: `/api/v1/audit`, `/audit/export` and `/audit/verify` (docs/audit-log.md)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import secrets
import sqlite3
import uuid
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import httpx
import pytest
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.tamper import tamper
from vault import audit
from vault.audit import query as audit_query
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services

AUDIT_URLS = ["/api/v1/audit", "/api/v1/audit/export", "/api/v1/audit/verify"]
# A classic CSV-injection payload (OWASP): a spreadsheet would run it as a DDE formula.
FORMULA = "=cmd|' /C calc'!A0"
# Names may hold `|` and `'` but never `/`, so the file name spells the switch `-C`.
FORMULA_NAME = "=cmd|' -C calc'!A0.csv"
GENESIS = "0" * 64


async def _upload(
    http: httpx.AsyncClient, auth: dict[str, str], folder: uuid.UUID, name: str, content: bytes
) -> str:
    response = await http.put(
        f"/api/v1/folders/{folder}/files/{quote(name, safe='')}", content=content, headers=auth
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def _events(
    http: httpx.AsyncClient, auth: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit", params={"limit": "1000", **params}, headers=auth)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def _stored(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        return [event async for event in audit.iter_events(session)]


def _csv_of(response: httpx.Response) -> str:
    """The CSV inside a CSV export's zip (beside its checkpoint and proof)."""
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["audit.csv", "audit.checkpoint", "audit.proof.jsonl"]
        return archive.read("audit.csv").decode("utf-8")


def _exported(response: httpx.Response) -> list[dict[str, Any]]:
    """The events of a JSON Lines export, without its final checkpoint line."""
    lines = [json.loads(line) for line in response.content.decode().splitlines()]
    assert set(lines[-1]) == {"checkpoint", "manifest", "tree_size"}
    return lines[:-1]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_only_auditors_and_admins_read_the_log(http: httpx.AsyncClient, world: World) -> None:
    for url in AUDIT_URLS:
        anonymous = await http.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for name in ("alice", "bob", "sam", "gina"):
            denied = await http.get(url, headers=world[name].auth)
            assert denied.status_code == 403, (url, name)
            assert denied.headers["content-type"] == "application/problem+json"
        for name in ("otto", "ada"):
            allowed = await http.get(url, headers=world[name].auth)
            assert allowed.status_code == 200, (url, name, allowed.text)
            assert allowed.headers["cache-control"] == "no-store"
    bad_token = {"Authorization": "Bearer cvt_not-a-real-token"}
    assert (await http.get("/api/v1/audit", headers=bad_token)).status_code == 401


async def test_filters(http: httpx.AsyncClient, world: World) -> None:
    otto = world["otto"].auth
    alice, bob, sam = world["alice"], world["bob"], world["sam"]
    acme_doc = await _upload(http, alice.auth, world.acme_folder, "invoice.pdf", b"acme")
    globex_doc = await _upload(http, bob.auth, world.globex_folder, "invoice.pdf", b"globex")
    assert (await http.get(f"/api/v1/documents/{acme_doc}", headers=sam.auth)).status_code == 200
    content = await http.get(f"/api/v1/documents/{acme_doc}/content", headers=alice.auth)
    assert content.content == b"acme"

    everything = await _events(http, otto)
    assert len(everything) > 10

    by_client = await _events(http, otto, client_id=str(world.acme))
    assert by_client and {e["client_id"] for e in by_client} == {str(world.acme)}
    assert ("document.created", acme_doc) in {(e["action"], e["document_id"]) for e in by_client}
    assert globex_doc not in {e["document_id"] for e in by_client}

    by_actor = await _events(http, otto, actor=str(alice.id))
    assert {e["actor_id"] for e in by_actor} == {str(alice.id)}
    # A full download is recorded when it starts and again when its last byte has gone out.
    assert [e["action"] for e in by_actor] == [
        "document.download_completed",
        "document.downloaded",
        "document.created",
    ]
    by_sam = await _events(http, otto, actor=str(sam.id))
    assert [(e["action"], e["document_id"]) for e in by_sam] == [("document.viewed", acme_doc)]

    created = await _events(http, otto, action="document.created")
    assert {e["document_id"] for e in created} == {acme_doc, globex_doc}
    assert {e["action"] for e in created} == {"document.created"}

    family = await _events(http, otto, action="document.*")
    assert sorted(e["action"] for e in family) == [
        "document.created",
        "document.created",
        "document.download_completed",
        "document.downloaded",
        "document.viewed",
    ]
    # The family pattern is a prefix, not a LIKE pattern: `_` and `%` are literal characters.
    assert await _events(http, otto, action="documen_.*") == []
    assert await _events(http, otto, action="%.*") == []
    assert await _events(http, otto, action="document") == []

    by_document = await _events(http, otto, document_id=acme_doc)
    assert {e["document_id"] for e in by_document} == {acme_doc}
    assert [e["action"] for e in by_document] == [
        "document.download_completed",
        "document.downloaded",
        "document.viewed",
        "document.created",
    ]

    combined = await _events(http, otto, client_id=str(world.globex), action="document.*")
    assert [(e["action"], e["document_id"]) for e in combined] == [("document.created", globex_doc)]


async def test_since_and_until(http: httpx.AsyncClient, world: World) -> None:
    otto = world["otto"].auth
    first = await _upload(http, world["alice"].auth, world.acme_folder, "one.txt", b"1")
    await asyncio.sleep(0.01)  # timestamps have millisecond precision
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    second = await _upload(http, world["alice"].auth, world.acme_folder, "two.txt", b"2")

    later = await _events(http, otto, action="document.created", since=_iso(middle))
    assert [e["document_id"] for e in later] == [second]
    earlier = await _events(http, otto, action="document.created", until=_iso(middle))
    assert [e["document_id"] for e in earlier] == [first]
    # The same instant spelled with another offset selects the same events.
    offset = middle.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert offset.endswith("+02:00")
    later_offset = await _events(http, otto, action="document.created", since=offset)
    assert [e["document_id"] for e in later_offset] == [second]
    window = await _events(
        http, otto, action="document.created", since="2000-01-01T00:00:00Z", until=_iso(middle)
    )
    assert [e["document_id"] for e in window] == [first]
    assert await _events(http, otto, since="2999-01-01T00:00:00Z") == []
    for event in await _events(http, otto, since=_iso(middle)):
        assert event["ts"] >= _iso(middle)[:23]


BAD_QUERIES: list[tuple[str, dict[str, str]]] = [
    (url, query)
    for query in (
        {"since": "yesterday"},
        {"until": "2026-13-01T00:00:00Z"},
        {"since": "2026-01-31T00:00:00"},  # no zone: ambiguous
        {"until": "31/01/2026"},
    )
    for url in ("/api/v1/audit", "/api/v1/audit/export")
] + [
    ("/api/v1/audit", {"limit": "ten"}),
    ("/api/v1/audit", {"limit": "-1"}),
    ("/api/v1/audit", {"cursor": "abc"}),
    ("/api/v1/audit/export", {"format": "xlsx"}),
]


async def test_bad_filters_are_422_problems(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    before = len(await _stored(services))
    for url, query in BAD_QUERIES:
        response = await http.get(url, params=query, headers=world["otto"].auth)
        assert response.status_code == 422, (url, query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert len(await _stored(services)) == before  # nothing was read, so nothing audited


async def test_newest_first_and_cursor_walks_everything_once(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    for i in range(3):
        await _upload(http, world["alice"].auth, world.acme_folder, f"f{i}.txt", b"x")
    stored = await _stored(services)
    head = stored[-1].seq
    assert head >= 10

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await http.get("/api/v1/audit", params=params, headers=world["ada"].auth)
        assert response.status_code == 200
        body = response.json()
        batch = [e["seq"] for e in body["events"]]
        assert 1 <= len(batch) <= 2
        assert batch == sorted(batch, reverse=True)
        seen.extend(batch)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
        assert pages < 100
    # The walk covers the log as it stood at the first page: every event once, no gaps.
    assert seen == list(range(head, 0, -1))
    # Each page was itself audited, after (above) the events it showed.
    viewed = [e for e in await _stored(services) if e.action == "audit.viewed"]
    assert len(viewed) == pages and all(e.seq > head for e in viewed)
    assert {e.actor_id for e in viewed} == {str(world["ada"].id)}


async def test_listing_is_audited(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    events = await _events(http, world["otto"].auth, action="document.*")
    assert events == []
    last = (await _stored(services))[-1]
    assert last.action == "audit.viewed"
    assert last.actor_id == str(world["otto"].id) and last.actor_role == "auditor"
    details = json.loads(last.details)
    assert len(details.pop("request_id")) == 32  # the request's id, as in its log line
    assert details == {"filters": {"action": "document.*"}}


async def test_csv_export(http: httpx.AsyncClient, world: World, services: Services) -> None:
    name = FORMULA_NAME
    document_id = await _upload(http, world["alice"].auth, world.acme_folder, name, b"a,b\n1,2\n")
    # A request header is another attacker-controlled value that lands in its own cell.
    await http.get(
        f"/api/v1/documents/{document_id}",
        headers={**world["alice"].auth, "User-Agent": FORMULA},
    )
    response = await http.get(
        "/api/v1/audit/export", params={"format": "csv"}, headers=world["otto"].auth
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="audit-csv.zip"'
    assert response.headers["cache-control"] == "no-store"

    rows = list(csv.reader(io.StringIO(_csv_of(response), newline="")))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["seq", "ts"] and "action" in header and "details" in header
    stored = await _stored(services)
    assert [int(row[0]) for row in body] == [e.seq for e in stored]  # one row per event
    assert all(len(row) == len(header) for row in body)
    # The export itself was recorded before the bytes left, so it is in its own output.
    assert body[-1][header.index("action")] == "audit.exported"

    # No cell starts a formula: a hostile value is prefixed with a quote, and kept intact.
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r", cell
    agents = [row[header.index("user_agent")] for row in body]
    assert "'" + FORMULA in agents
    created = next(row for row in body if row[header.index("action")] == "document.created")
    assert json.loads(created[header.index("details")])["name"] == name


async def test_jsonl_export_verifies_with_hashlib_only(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await _upload(http, world["alice"].auth, world.acme_folder, "naïve résumé.txt", b"x")
    response = await http.get("/api/v1/audit/export", headers=world["otto"].auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == 'attachment; filename="audit.jsonl"'
    lines = response.content.decode("utf-8").splitlines()
    trailer = json.loads(lines.pop())
    assert trailer["tree_size"] == len(lines) == len(await _stored(services))

    # An outside verifier: drop leaf_hash, re-encode canonically, hash, follow `prev`.
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        entry = json.loads(line)
        leaf = entry.pop("leaf_hash")
        canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical.encode("utf-8") == line.encode("utf-8").replace(
            f',"leaf_hash":"{leaf}"'.encode(), b""
        )
        assert hashlib.sha256(b"\x00" + canonical.encode("utf-8")).hexdigest() == leaf
        assert entry["prev"] == prev
        assert entry["seq"] == number and entry["v"] == 2
        prev = leaf
    last = json.loads(lines[-1])
    assert last["action"] == "audit.exported"
    assert last["actor_id"] == str(world["otto"].id)
    details = dict(last["details"])
    assert len(details.pop("request_id")) == 32  # the request's id, as in its log line
    assert details == {"filters": {}, "format": "jsonl"}

    verified = (await http.get("/api/v1/audit/verify", headers=world["otto"].auth)).json()
    assert verified["ok"] is True
    # The verify call appended `audit.verified` after the exported head (and the
    # checkpoint the export's own proof covers).
    assert verified["events"] == len(lines) + 1


async def test_filtered_export(http: httpx.AsyncClient, world: World) -> None:
    document_id = await _upload(http, world["bob"].auth, world.globex_folder, "a.txt", b"a")
    response = await http.get(
        "/api/v1/audit/export",
        params={"format": "jsonl", "document_id": document_id},
        headers=world["ada"].auth,
    )
    entries = _exported(response)
    assert [e["action"] for e in entries] == ["document.created"]
    exported = await _events(http, world["ada"].auth, action="audit.exported")
    details = dict(exported[0]["details"])
    assert len(details.pop("request_id")) == 32
    assert details == {"filters": {"document_id": document_id}, "format": "jsonl"}


async def test_verify_finds_a_tampered_event(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await _upload(http, world["alice"].auth, world.acme_folder, "a.txt", b"a")
    ok = await http.get("/api/v1/audit/verify", headers=world["otto"].auth)
    assert ok.status_code == 200
    assert set(ok.json()) == {"ok", "events", "head"} and ok.json()["ok"] is True
    stored = await _stored(services)
    # `audit.verified` is recorded first, so the chain verified includes it.
    assert ok.json()["events"] == len(stored)
    assert ok.json()["head"] == stored[-1].leaf_hash
    verified = (await _stored(services))[-1]
    assert verified.action == "audit.verified" and verified.actor_id == str(world["otto"].id)

    target = next(e.seq for e in await _stored(services) if e.document_id == document_id)
    await tamper(
        services.engine,
        "UPDATE audit_events SET actor_role = 'staff' WHERE seq = :seq",
        params={"seq": target},
    )
    bad = await http.get("/api/v1/audit/verify", headers=world["otto"].auth)
    assert bad.status_code == 200
    result = bad.json()
    assert result["ok"] is False
    assert result["first_bad_seq"] == target
    assert result["events"] == target - 1
    assert "altered" in result["reason"]


async def test_events_hold_no_tokens_or_contents(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    marker = f"SECRET-CONTENT-{secrets.token_hex(16)}"
    alice = world["alice"]
    document_id = await _upload(
        http, alice.auth, world.acme_folder, "secret.txt", marker.encode() * 3
    )
    content = await http.get(f"/api/v1/documents/{document_id}/content", headers=alice.auth)
    assert content.text == marker * 3
    ranged = await http.get(
        f"/api/v1/documents/{document_id}/content", headers={**alice.auth, "Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206
    export = await http.get("/api/v1/audit/export", headers=world["otto"].auth)
    text_export = export.content.decode("utf-8")
    assert document_id in text_export  # the export is not trivially empty
    assert marker not in text_export
    assert marker[:24] not in text_export
    for person in world.people.values():
        assert person.token not in text_export
        assert person.token.removeprefix("cvt_") not in text_export
    csv_export = await http.get(
        "/api/v1/audit/export", params={"format": "csv"}, headers=world["otto"].auth
    )
    assert marker not in _csv_of(csv_export)
    assert alice.token not in _csv_of(csv_export)


async def test_export_in_small_batches_is_complete(
    http: httpx.AsyncClient, world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_query, "EXPORT_BATCH", 2)
    stored = await _stored(services)
    assert len(stored) % 2 == 0  # so one batch boundary falls exactly at the end
    response = await http.get("/api/v1/audit/export", headers=world["otto"].auth)
    seqs = [e["seq"] for e in _exported(response)]
    assert seqs == list(range(1, len(stored) + 2))  # + the export's own event
    response = await http.get(
        "/api/v1/audit/export", params={"action": "user.*"}, headers=world["otto"].auth
    )
    actions = [e["action"] for e in _exported(response)]
    assert actions == ["user.created"] * len(world.people)


async def test_export_holds_no_transaction_while_the_client_reads(
    app: ASGIApp, world: World, services: Services
) -> None:
    """A slow export reader must not block writers (on SQLite: the database write lock)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/audit/export",
        "raw_path": b"/api/v1/audit/export",
        "query_string": b"format=jsonl",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {world['otto'].token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    finished = asyncio.Event()
    requested = False
    wrote: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def write_while_streaming() -> None:
        # As another request would, while the export waits for its client.
        if services.settings.database_url.startswith("sqlite"):
            path = services.settings.database_url.split(":///", 1)[1]

            def try_lock() -> None:
                conn = sqlite3.connect(path, timeout=2, isolation_level=None)
                try:
                    conn.execute("BEGIN IMMEDIATE")  # "database is locked" if the export holds it
                    conn.execute("ROLLBACK")
                finally:
                    conn.close()

            await anyio.to_thread.run_sync(try_lock)
        async with asyncio.timeout(10), transaction(services.sessions) as session:
            event = await audit.append(session, audit.SYSTEM, "test.concurrent_write")
        wrote.append(event.seq)

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body") and not wrote:
            await write_while_streaming()
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await app(scope, receive, send)
    assert len(wrote) == 1
    assert (await _stored(services))[-1].action == "test.concurrent_write"
