"""Upload-request links, the visitor's side: tus at /s/{token}/uploads into the link's
folder, the link's limits before any byte, drops held for a real clamd, and a visitor who
can read nothing, not even what they sent."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.clamd import EICAR, SIGNATURE, ClamdServer
from tests.fixtures.dates import soon
from tests.fixtures.notify import WINDOW, later, tick
from tests.fixtures.pages import other as other
from tests.fixtures.quarantine import held_rows, scan_all
from tests.fixtures.signin import sign_in
from tests.fixtures.smtp import SMTPSink
from vault.drops import Drop
from vault.links import Link
from vault.models import AuditEvent
from vault.notifications import Cadence
from web.services import Services
from web.settings import ScanSettings, Settings

__all__ = ["other"]  # the second browser's fixture
API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def settings(settings: Settings, clamd: ClamdServer) -> Settings:
    scan = ScanSettings(clamd_socket=str(clamd.socket), worker=False)
    notify = settings.notify.model_copy(update={"worker": False})  # the tests tick it
    return settings.model_copy(update={"scan": scan, "notify": notify})


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def upload_link(http: httpx.AsyncClient, world: World, **limits: Any) -> str:
    response = await http.post(
        f"{API}/folders/{world.acme_folder}/links",
        json={"kind": "upload", "expires_at": soon(), **limits},
        headers=world["sam"].auth,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["url"].rsplit("/s/", 1)[1]
    return token


async def start(
    http: httpx.AsyncClient,
    token: str,
    length: int,
    name: str = "statement.pdf",
    *,
    expect: int = 201,
    **extra: str,
) -> httpx.Response:
    meta = {
        "filename": name,
        "uploader_name": "Dana Banker",
        "uploader_email": "dana@bank.example",
        **extra,
    }
    response = await http.post(
        f"/s/{token}/uploads",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**meta)},
    )
    assert response.status_code == expect, response.text
    return response


async def drop(http: httpx.AsyncClient, token: str, data: bytes, name: str) -> httpx.Response:
    location = (await start(http, token, len(data), name)).headers["location"]
    assert location.startswith(f"/s/{token}/uploads/")
    response = await http.patch(
        location, content=data, headers={**TUS, **STREAM, "Upload-Offset": "0"}
    )
    assert response.status_code == 204, response.text
    return response


async def events(services: Services, prefix: str) -> list[AuditEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith(prefix))
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars())


async def listed(http: httpx.AsyncClient, world: World) -> list[str]:
    response = await http.get(f"{API}/folders/{world.acme_folder}", headers=world["sam"].auth)
    return [d["name"] for d in response.json()["documents"]]


async def test_a_visitor_drops_a_file_that_staff_see_with_who_sent_it(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    token = await upload_link(http, world)
    answer = await drop(http, token, b"%PDF-1.7 statement", "statement.pdf")
    # The visitor learns that it was stored, nothing of the document it became.
    assert answer.headers["upload-offset"] == str(len(b"%PDF-1.7 statement"))
    assert not any(h.startswith("document-") for h in answer.headers)
    assert await listed(http, world) == []  # held until scanned (drops are scanned)
    assert await scan_all(services, settings) == 1
    assert await listed(http, world) == ["statement.pdf"]

    async with services.sessions() as session:
        [row] = (await session.execute(select(Drop))).scalars().all()
    assert (row.uploader_name, row.uploader_email, row.name) == (
        "Dana Banker",
        "dana@bank.example",
        "statement.pdf",
    )
    assert row.ip == "127.0.0.1"
    [started] = await events(services, "link.drop_started")
    assert started.actor_role == "visitor" and started.ip == "127.0.0.1"
    assert token not in started.details
    [created] = await events(services, "document.created")
    # Published by the scanner; the drop row and the held event say who sent it.
    assert created.actor_role == "system" and json.loads(created.details)["scan"] == "clean"
    assert json.loads(created.details)["upload_id"] == str(row.upload_id)
    document = await http.get(f"{API}/documents/{created.document_id}", headers=world["sam"].auth)
    assert document.json()["versions"][0]["uploaded_by"] is None


async def test_the_visitor_can_read_nothing(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    token = await upload_link(http, world)
    await drop(http, token, b"secret figures", "figures.txt")
    await scan_all(services, settings)
    [created] = await events(services, "document.created")
    document_id = created.document_id
    for path in (
        f"{API}/documents/{document_id}",
        f"{API}/documents/{document_id}/content",
        f"{API}/folders/{world.acme_folder}",
        f"/s/{token}/content",
        f"/s/{token}/uploads",
        f"/documents/{document_id}",
    ):
        response = await http.get(path)
        assert b"secret figures" not in response.content
        assert response.status_code in (302, 303, 401, 404, 405), (path, response.status_code)
    # Another link's upload cannot be continued (or read) through this one.
    other = await upload_link(http, world)
    location = (await start(http, other, 10, "x.txt")).headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    stray = await http.head(f"/s/{token}/uploads/{upload_id}", headers=TUS)
    assert stray.status_code == 404
    assert (await http.head(location, headers=TUS)).status_code == 200


async def test_limits_are_enforced_before_any_byte(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    token = await upload_link(http, world, max_file_bytes=1000, max_files=2, max_total_bytes=1500)
    too_big = await start(http, token, 1001, "big.bin", expect=413)
    assert "1000" in too_big.json()["detail"]
    await start(http, token, 900, "a.bin")
    # 900 + 700 would pass 1500 bytes in all.
    await start(http, token, 700, "b.bin", expect=413)
    await start(http, token, 600, "c.bin")
    await start(http, token, 1, "d.bin", expect=404)  # two files: the link is used up
    async with services.sessions() as session:
        link = (await session.execute(select(Link))).scalar_one()
        assert (link.files_received, link.bytes_received) == (2, 1500)
        assert len((await session.execute(select(Drop))).scalars().all()) == 2
    # Name and email are required, before anything is reserved.
    token = await upload_link(http, world)
    response = await http.post(
        f"/s/{token}/uploads",
        headers={**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(filename="n.txt")},
    )
    assert response.status_code == 400
    bad = await start(http, token, 5, "n.txt", expect=422, uploader_email="not an address")
    assert bad.json()["field"] == "uploader_email"
    await start(http, token, 5, "a/b.txt", expect=422)  # a name no file may have
    # Each refusal of a known link is audited with its reason (a malformed request is not).
    refused = await events(services, "link.refused")
    assert [json.loads(e.details)["reason"] for e in refused] == [
        "too_large",
        "limit",
        "exhausted",
        "bad_metadata",
        "bad_name",
    ]
    assert all(e.outcome == "denied" and e.actor_role == "visitor" for e in refused)


async def test_an_unknown_or_revoked_link_answers_404_with_the_same_body(
    http: httpx.AsyncClient, world: World
) -> None:
    token = await upload_link(http, world)
    unknown = await start(http, "x" * 43, 5, expect=404)
    links = await http.get(f"{API}/links", headers=world["sam"].auth)
    link_id = links.json()["links"][0]["id"]
    revoked = await http.delete(f"{API}/links/{link_id}", headers=world["sam"].auth)
    assert revoked.status_code == 204
    gone = await start(http, token, 5, expect=404)
    assert gone.json() == unknown.json()


async def test_eicar_through_a_drop_link_is_never_served_and_is_audited(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    token = await upload_link(http, world)
    await drop(http, token, EICAR, "invoice.pdf.exe")
    assert await scan_all(services, settings) == 1
    [row] = await held_rows(services)
    assert row.state == "infected" and row.signature == SIGNATURE
    assert await listed(http, world) == []
    for who in ("sam", "alice", "ada"):
        response = await http.get(
            f"{API}/documents/{row.document_id}/content", headers=world[who].auth
        )
        assert response.status_code == 404 and EICAR not in response.content
    [scanned] = await events(services, "quarantine.scanned")
    assert scanned.outcome == "denied" and json.loads(scanned.details)["signature"] == SIGNATURE
    [held] = await events(services, "quarantine.held")
    assert held.actor_role == "visitor" and held.ip == "127.0.0.1"
    assert await events(services, "document.") == []


async def test_the_drop_page_speaks_the_visitors_language_and_shows_no_files(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await http.put(
        f"{API}/folders/{world.acme_folder}/files/existing.txt",
        content=b"already here",
        headers=world["sam"].auth,
    )
    token = await upload_link(http, world, max_files=5, max_file_bytes=10_000)
    page = await http.get(f"/s/{token}", headers={"Accept-Language": "he-IL,he;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="he" dir="rtl"' in page.text
    assert "שליחת קבצים" in page.text  # "Send files"
    assert f'data-endpoint="/s/{token}/uploads"' in page.text
    assert 'name="uploader_name"' in page.text and 'name="uploader_email"' in page.text
    assert "existing.txt" not in page.text and "csrf_token" not in page.text
    assert page.headers["cache-control"] == "no-store"
    [viewed] = await events(services, "link.viewed")
    assert viewed.actor_role == "visitor" and token not in viewed.details
    english = await http.get(f"/s/{token}", headers={"Accept-Language": "en"})
    assert "Send files" in english.text and "Files left: 5" in english.text
    # A dead link's page is the same 404 as an unknown one.
    unknown = await http.get("/s/" + "y" * 43)
    assert unknown.status_code == 404


async def test_staff_get_one_email_for_a_batch_of_drops(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    token = await upload_link(http, world)
    await drop(http, token, b"one", "first.pdf")
    await drop(http, token, b"two", "second.pdf")
    # Staff chose a daily digest; drops reach them within one batch window all the same.
    await tick(services, smtp_sink, staff=Cadence.DAILY)
    assert smtp_sink.messages == []
    await tick(services, smtp_sink, later(WINDOW + 1), staff=Cadence.DAILY)
    [(recipients, message)] = smtp_sink.messages
    assert recipients == [world["sam"].email]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "first.pdf" in text and "second.pdf" in text
    assert "Dana Banker <dana@bank.example>" in text
    assert f"/folders/{world.acme_folder}" in text
    assert token not in text
    # Nothing more, and the client's members hear nothing of a held drop.
    await tick(services, smtp_sink, later(3 * WINDOW), staff=Cadence.DAILY)
    assert len(smtp_sink.messages) == 1


async def test_the_folder_page_shows_staff_who_dropped_what(
    http: httpx.AsyncClient,
    other: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    token = await upload_link(http, world)
    await drop(http, token, b"clean", "clean.txt")
    await drop(http, token, EICAR, "bad.com")
    await scan_all(services, settings)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    section = page.text.split('id="drops-heading"', 1)[1]
    assert "Dana Banker" in section and "dana@bank.example" in section
    assert "127.0.0.1" in section and "clean.txt" in section and "bad.com" in section
    assert "Infected" in section
    # The held file names its visitor too.
    held = page.text.split('id="quarantine-heading"', 1)[1].split("</section>", 1)[0]
    assert "bad.com" in held and "Dana Banker &lt;dana@bank.example&gt;" in held
    # Client members see no drop records.
    await sign_in(other, world["alice"], second_factor=True)
    theirs = await other.get(f"/folders/{world.acme_folder}")
    assert "drops-heading" not in theirs.text and "Dana Banker" not in theirs.text


async def test_the_no_javascript_form_drops_files_within_the_limits(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    token = await upload_link(http, world, max_files=5, max_total_bytes=100)
    fields = {"uploader_name": "Dana Banker", "uploader_email": "dana@bank.example"}
    sent = await http.post(
        f"/s/{token}/uploads/form",
        data=fields,
        files=[("file", ("a.txt", b"a" * 40, "text/plain"))],
        headers={"Accept-Language": "ja"},
    )
    assert sent.status_code == 200, sent.text
    assert "a.txt" in sent.text and '<html lang="ja"' in sent.text
    # 40 + 70 bytes would pass the link's 100: the second file is refused part-way.
    refused = await http.post(
        f"/s/{token}/uploads/form",
        data=fields,
        files=[("file", ("b.txt", b"b" * 70, "text/plain"))],
    )
    assert refused.status_code == 422
    assert await scan_all(services, settings) == 1
    assert await listed(http, world) == ["a.txt"]
    async with services.sessions() as session:
        [row] = (await session.execute(select(Drop))).scalars().all()
        link = (await session.execute(select(Link))).scalar_one()
    assert (row.name, row.uploader_email, row.length) == ("a.txt", "dana@bank.example", 40)
    assert link.bytes_received == 40
    # Without a name and email nothing is stored.
    bare = await http.post(
        f"/s/{token}/uploads/form", files=[("file", ("c.txt", b"c", "text/plain"))]
    )
    assert bare.status_code == 422
    assert [e.action for e in await events(services, "link.dropped")] == ["link.dropped"]
    refused_reasons = [json.loads(e.details)["reason"] for e in await events(services, "link.ref")]
    assert refused_reasons == ["too_large", "bad_metadata"]


async def test_a_password_protected_drop_link_takes_files_only_once_unlocked(
    http: httpx.AsyncClient, other: httpx.AsyncClient, world: World, services: Services
) -> None:
    token = await upload_link(http, world, password="drop box passphrase")
    # `other` is a fresh browser: no grant yet, so no uploads and no drop page.
    await start(other, token, 5, "x.txt", expect=404)
    page = await other.get(f"/s/{token}")
    assert 'name="password"' in page.text and "upload-panel" not in page.text
    unlocked = await other.post(f"/s/{token}/password", data={"password": "drop box passphrase"})
    assert unlocked.status_code == 303
    assert "upload-panel" in (await other.get(f"/s/{token}")).text
    await drop(other, token, b"hello", "x.txt")
    # The grant is the browser's: another one without it is still refused.
    await start(http, token, 5, "y.txt", expect=404)
    refused = [json.loads(e.details)["reason"] for e in await events(services, "link.refused")]
    assert refused.count("locked") == 2


async def test_a_drop_never_becomes_a_version_of_what_is_there(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    ada = world["ada"].auth
    off = await http.put(
        f"{API}/clients/{world.acme}/link-policy", json={"scan_drops": False}, headers=ada
    )
    assert off.status_code == 200, off.text
    made = await http.put(
        f"{API}/folders/{world.acme_folder}/files/plan.txt",
        content=b"the real plan",
        headers=world["sam"].auth,
    )
    document_id = made.json()["document_id"]
    shared = await http.post(
        f"{API}/documents/{document_id}/links",
        json={"expires_at": soon()},
        headers=world["sam"].auth,
    )
    share = shared.json()["url"].rsplit("/s/", 1)[1]
    token = await upload_link(http, world)

    answers = []
    for name in ("plan.txt", "fresh.txt", "pIan.txt"):  # the same, a new, a look-alike name
        started = await start(http, token, 6, name)
        answers.append({k for k in started.headers if k not in ("date", "location")})
        done = await http.patch(
            started.headers["location"],
            content=b"forged",
            headers={**TUS, **STREAM, "Upload-Offset": "0"},
        )
        assert done.status_code == 204, done.text
        answers.append(set(done.headers) - {"date"})
    # The visitor cannot tell which names exist: every drop is answered alike.
    assert answers[0] == answers[2] == answers[4] and answers[1] == answers[3] == answers[5]

    kept = await http.get(f"{API}/documents/{document_id}", headers=world["sam"].auth)
    assert [v["number"] for v in kept.json()["versions"]] == [1]
    assert (await http.get(f"/s/{share}/content")).content == b"the real plan"
    assert sorted(await listed(http, world)) == [
        "fresh.txt",
        "pIan (3).txt",  # `pIan (2).txt` would read as `plan (2).txt`
        "plan (2).txt",
        "plan.txt",
    ]
    # Two drops of one name under way at once both land, each under a name of its own.
    first = await start(http, token, 3, "notes.txt")
    second = await start(http, token, 3, "notes.txt")
    for started in (second, first):
        done = await http.patch(
            started.headers["location"],
            content=b"abc",
            headers={**TUS, **STREAM, "Upload-Offset": "0"},
        )
        assert done.status_code == 204, done.text
    assert {"notes.txt", "notes (2).txt"} <= set(await listed(http, world))
    # The form answers with the name the visitor sent, not the one it was stored under.
    sent = await http.post(
        f"/s/{token}/uploads/form",
        data={"uploader_name": "Dana Banker", "uploader_email": "dana@bank.example"},
        files=[("file", ("plan.txt", b"form", "text/plain"))],
    )
    assert sent.status_code == 200, sent.text
    assert "plan.txt" in sent.text and "plan (" not in sent.text
    assert "plan (4).txt" in await listed(http, world)
    async with services.sessions() as session:
        names = set((await session.execute(select(Drop.name))).scalars())
    assert {"plan (2).txt", "pIan (3).txt", "plan (4).txt"} <= names
