"""Malware quarantine against a real clamd: held versions are invisible until scanned, an
EICAR upload is never served, a clean one is published, clamd going away leaves versions
pending until it returns, and every verdict and decision is audited."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.clamd import EICAR, SIGNATURE, ClamdServer
from tests.fixtures.cli import cli_async, ok
from tests.fixtures.documents import upload
from tests.fixtures.pages import csrf_of
from tests.fixtures.pages import other as other
from tests.fixtures.quarantine import held_rows, policy, scan_all
from tests.fixtures.signin import sign_in
from tests.fixtures.tus import new_upload, send
from vault import quarantine, scanning
from vault.accounts import principal_for
from vault.audit import AuditContext
from vault.clamd import ClamdScanner
from vault.db import transaction
from vault.errors import ConflictError, NotFoundError, ScannerUnavailableError
from vault.models import AuditEvent, User
from vault.policy import Principal
from vault.quarantine_tables import ScanState
from web.services import Services
from web.settings import ScanSettings, Settings

API = "/api/v1"
STAFF_CONTEXT = AuditContext(actor_role="staff")


@pytest.fixture
def settings(settings: Settings, clamd: ClamdServer) -> Settings:
    # The tests drive the worker themselves, one scan at a time, except where noted.
    scan = ScanSettings(all_uploads=True, clamd_socket=str(clamd.socket), worker=False)
    return settings.model_copy(update={"scan": scan})


async def events(services: Services, prefix: str) -> list[AuditEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith(prefix))
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars())


def details(event: AuditEvent) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(event.details)
    found.pop("request_id", None)
    return found


async def folder_names(http: httpx.AsyncClient, world: World, who: str = "sam") -> list[str]:
    response = await http.get(f"{API}/folders/{world.acme_folder}", headers=world[who].auth)
    assert response.status_code == 200
    return [d["name"] for d in response.json()["documents"]]


__all__ = ["other"]  # the second browser's fixture


async def test_eicar_upload_is_never_served_and_is_audited(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    response = await upload(http, world["alice"].auth, world.acme_folder, "invoice.com", EICAR)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["version"] is None and body["scan"] == "pending"
    document_id = body["document_id"]

    assert await scan_all(services, settings) == 1
    [row] = await held_rows(services)
    assert row.state == ScanState.INFECTED and row.signature == SIGNATURE
    assert row.held  # kept, encrypted, for staff to review
    for who in ("alice", "sam", "ada"):
        auth = world[who].auth
        assert (await http.get(f"{API}/documents/{document_id}", headers=auth)).status_code == 404
        content = await http.get(f"{API}/documents/{document_id}/content", headers=auth)
        assert content.status_code == 404
        assert EICAR not in content.content
    assert await folder_names(http, world) == []
    # Never published, so never notified: the notifier reads only document.* events.
    assert await events(services, "document.") == []

    [held] = await events(services, "quarantine.held")
    assert held.actor_id == str(world["alice"].id) and held.document_id == document_id
    [scanned] = await events(services, "quarantine.scanned")
    assert scanned.outcome == "denied" and scanned.actor_role == "system"
    assert details(scanned)["signature"] == SIGNATURE
    assert details(scanned)["state"] == "infected"

    # Staff may not release it, only delete it; both decisions are audited.
    staff = await _principal(services, world, "sam")
    with pytest.raises(ConflictError):
        async with transaction(services.sessions) as session:
            await quarantine.release(session, staff, STAFF_CONTEXT, row.version_id)
    async with transaction(services.sessions) as session:
        key = await quarantine.discard(session, staff, STAFF_CONTEXT, row.version_id)
    await services.store.delete(key)
    [gone] = await held_rows(services)
    assert gone.deleted_at is not None and gone.wrapped_dek is None
    [deleted] = await events(services, "quarantine.deleted")
    assert deleted.actor_role == "staff" and details(deleted)["signature"] == SIGNATURE
    assert not [o async for o in services.store.list(key)]
    assert await events(services, "document.") == []


async def test_clean_upload_is_published_after_its_scan(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    data = random.Random(1).randbytes(300_000)
    response = await upload(http, world["alice"].auth, world.acme_folder, "ledger.xlsx", data)
    assert response.status_code == 202
    document_id = response.json()["document_id"]
    # Held: nobody sees it, the staff member included, until it is scanned.
    assert await folder_names(http, world) == []
    assert (
        await http.get(f"{API}/documents/{document_id}", headers=world["sam"].auth)
    ).status_code == 404

    assert await scan_all(services, settings) == 1
    [row] = await held_rows(services)
    assert row.state == ScanState.CLEAN and row.published_version == 1
    assert await folder_names(http, world) == ["ledger.xlsx"]
    content = await http.get(f"{API}/documents/{document_id}/content", headers=world["alice"].auth)
    assert content.status_code == 200 and content.content == data
    [created] = await events(services, "document.created")
    assert created.document_id == document_id
    assert details(created)["scan"] == "clean" and details(created)["version"] == 1
    # The published version keeps its uploader.
    document = (await http.get(f"{API}/documents/{document_id}", headers=world["sam"].auth)).json()
    assert document["versions"][0]["uploaded_by"] == str(world["alice"].id)


async def test_a_new_version_waits_while_the_old_one_stays_served(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "plan.txt", b"first", expect=202)
    await scan_all(services, settings)
    response = await upload(http, world["alice"].auth, world.acme_folder, "plan.txt", EICAR)
    assert response.status_code == 202
    document_id = response.json()["document_id"]
    await scan_all(services, settings)
    document = (await http.get(f"{API}/documents/{document_id}", headers=world["sam"].auth)).json()
    assert [v["number"] for v in document["versions"]] == [1]
    content = await http.get(f"{API}/documents/{document_id}/content", headers=world["sam"].auth)
    assert content.content == b"first"
    for number in (2, None):
        query = "" if number is None else f"?version={number}"
        again = await http.get(
            f"{API}/documents/{document_id}/content{query}", headers=world["sam"].auth
        )
        assert EICAR not in again.content


async def test_clamd_down_leaves_versions_pending_until_it_returns(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
    clamd: ClamdServer,
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "a.txt", b"clean bytes", expect=202)
    await upload(http, world["alice"].auth, world.acme_folder, "b.com", EICAR, expect=202)
    clamd.stop()
    with pytest.raises(ScannerUnavailableError):
        await scan_all(services, settings)
    # The worker logs it and carries on; the versions stay pending and invisible.
    await scanning.run(
        services.sessions, services.store, services.keyring, policy(settings), once=True
    )
    rows = await held_rows(services)
    assert [r.state for r in rows] == [ScanState.PENDING, ScanState.PENDING]
    assert all(r.claim is None for r in rows)
    assert await folder_names(http, world) == []
    assert await events(services, "quarantine.scanned") == []

    clamd.start()
    assert await scan_all(services, settings) == 2
    rows = await held_rows(services)
    assert {r.name: r.state for r in rows} == {"a.txt": "clean", "b.com": "infected"}
    assert await folder_names(http, world) == ["a.txt"]


async def test_the_app_worker_publishes_clean_uploads_by_itself(
    world: World, services: Services, settings: Settings
) -> None:
    from asgi_lifespan import LifespanManager

    from web.app import create_app

    scan = settings.scan.model_copy(update={"worker": True, "interval_seconds": 0.2})
    running = settings.model_copy(update={"scan": scan})
    async with LifespanManager(create_app(running)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await upload(http, world["alice"].auth, world.acme_folder, "n.txt", b"hi", expect=202)
            with anyio.fail_after(30):
                # Polled from outside, as a user would: the worker signals nobody.
                while await folder_names(http, world) != ["n.txt"]:  # noqa: ASYNC110
                    await anyio.sleep(0.1)


async def test_too_large_to_scan_is_held_as_not_scanned_until_staff_release_it(
    http: httpx.AsyncClient,
    other: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    data = b"x" * 4096
    response = await upload(http, world["alice"].auth, world.acme_folder, "big.bin", data)
    document_id = response.json()["document_id"]
    await scan_all(services, settings, max_bytes=1024)
    [row] = await held_rows(services)
    assert row.state == ScanState.NOT_SCANNED and row.held
    assert row.reason is not None and "1024" in row.reason
    assert await folder_names(http, world) == []

    # A client may not release (it is not even visible to them); staff may.
    alice = await _principal(services, world, "alice")
    with pytest.raises(NotFoundError):
        async with transaction(services.sessions) as session:
            await quarantine.release(session, alice, STAFF_CONTEXT, row.version_id)
    staff = await _principal(services, world, "sam")
    async with transaction(services.sessions) as session:
        version = await quarantine.release(session, staff, STAFF_CONTEXT, row.version_id)
    assert version.number == 1
    assert await folder_names(http, world) == ["big.bin"]
    [released] = await events(services, "quarantine.released")
    assert released.actor_role == "staff" and released.document_id == document_id
    [created] = await events(services, "document.created")
    assert details(created)["scan"] == "not_scanned"
    # The document page tells staff that this version was never scanned.
    await sign_in(other, world["sam"], second_factor=True)
    page = await other.get(f"/documents/{document_id}")
    versions = page.text.split('id="versions-heading"', 1)[1].split("</section>", 1)[0]
    assert "Not scanned" in versions


async def test_without_a_scanner_the_policy_may_publish(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "x.txt", b"x", expect=202)
    await scan_all(services, settings, scanner=None, unscanned=scanning.Unscanned.PUBLISH)
    [row] = await held_rows(services)
    assert row.state == ScanState.NOT_SCANNED and row.published_version == 1
    assert row.reason == "no scanner is configured"
    assert await folder_names(http, world) == ["x.txt"]


async def test_infected_deleted_by_policy(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "v.com", EICAR, expect=202)
    await scan_all(services, settings, infected=scanning.Infected.DELETE)
    [row] = await held_rows(services)
    assert row.state == ScanState.INFECTED and row.deleted_at is not None
    # No copy of its data key is left either: a backup of the object stays unreadable.
    assert (row.kek_id, row.wrapped_dek, row.header) == (None, None, None)
    assert not [o async for o in services.store.list(row.storage_key)]
    [deleted] = await events(services, "quarantine.deleted")
    assert details(deleted)["by_policy"] is True


async def test_infected_is_kept_under_a_legal_hold_though_the_policy_deletes(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    placed = await http.post(
        f"{API}/clients/{world.acme}/holds",
        json={"reason": "Litigation", "folder_id": str(world.acme_folder)},
        headers=world["ada"].auth,
    )
    assert placed.status_code == 201, placed.text
    await upload(http, world["alice"].auth, world.acme_folder, "v.com", EICAR, expect=202)
    await scan_all(services, settings, infected=scanning.Infected.DELETE)
    [row] = await held_rows(services)
    assert row.state == ScanState.INFECTED and row.held and row.wrapped_dek is not None
    assert row.reason is not None and "legal hold" in row.reason
    assert [o.key async for o in services.store.list(row.storage_key)] == [row.storage_key]
    assert await events(services, "quarantine.deleted") == []
    [scanned] = await events(services, "quarantine.scanned")
    assert details(scanned)["signature"] == SIGNATURE and "legal hold" in details(scanned)["reason"]
    # Still never served, and staff delete it once the hold is released.
    assert await folder_names(http, world) == []
    release = f"{API}/holds/{placed.json()['id']}/release"
    released = await http.post(release, json={"reason": "Settled"}, headers=world["ada"].auth)
    assert released.status_code == 200
    staff = await _principal(services, world, "sam")
    async with transaction(services.sessions) as session:
        key = await quarantine.discard(session, staff, STAFF_CONTEXT, row.version_id)
    assert key == row.storage_key


async def test_tus_upload_is_held_and_says_so(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    auth = world["alice"].auth
    url = await new_upload(http, auth, world.acme_folder, len(EICAR), "t.com")
    answer = await send(http, url, auth, 0, EICAR)
    assert answer.headers["document-scan"] == "pending"
    assert "document-version" not in answer.headers
    head = await http.head(url, headers={**auth, "Tus-Resumable": "1.0.0"})
    assert head.headers["document-scan"] == "pending"
    await scan_all(services, settings)
    [row] = await held_rows(services)
    assert row.state == ScanState.INFECTED
    document_id = answer.headers["document-id"]
    assert (await http.get(f"{API}/documents/{document_id}", headers=auth)).status_code == 404


async def test_gc_and_fsck_leave_held_objects_alone(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    from vault import fsck, maintenance

    await upload(http, world["alice"].auth, world.acme_folder, "h.txt", b"held", expect=202)
    [row] = await held_rows(services)
    await maintenance.collect_garbage(services.sessions, services.store, grace=timedelta(0))
    assert [o.key async for o in services.store.list(row.storage_key)] == [row.storage_key]
    report = await fsck.check_store(
        services.sessions,
        services.store,
        services.keyring,
        STAFF_CONTEXT,
        orphan_grace=timedelta(0),
    )
    assert "orphan" not in report.problems


async def test_clamd_client_reports_an_unreachable_socket(tmp_path: Any) -> None:
    scanner = ClamdScanner(socket_path=str(tmp_path / "none.sock"), timeout=2)
    assert not await scanner.ping()

    async def chunks() -> Any:
        yield b"data"

    with pytest.raises(ScannerUnavailableError):
        await scanner.scan(chunks())


async def _principal(services: Services, world: World, who: str) -> Principal:
    async with services.sessions() as session:
        user = await session.get(User, world[who].id)
        assert user is not None
        return await principal_for(session, user)


async def test_staff_see_held_files_on_the_folder_page_and_decide(
    http: httpx.AsyncClient,
    other: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "virus.com", EICAR, expect=202)
    await upload(http, world["alice"].auth, world.acme_folder, "huge.bin", b"y" * 5000, expect=202)
    await scan_all(services, settings, max_bytes=4096)
    infected, unscanned = await held_rows(services)

    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    assert page.status_code == 200
    held = page.text.split('id="quarantine-heading"', 1)[1]
    assert "virus.com" in held and SIGNATURE in held and "huge.bin" in held
    assert f"/quarantine/{infected.version_id}/release" not in held  # never released
    assert f"/quarantine/{unscanned.version_id}/release" in held
    # A client member sees no trace of held files, their own included.
    await sign_in(other, world["alice"], second_factor=True)
    theirs = await other.get(f"/folders/{world.acme_folder}")
    assert "quarantine-heading" not in theirs.text and "virus.com" not in theirs.text
    refused = await other.post(
        f"/quarantine/{unscanned.version_id}/release", data={"csrf_token": csrf_of(theirs.text)}
    )
    assert refused.status_code == 404

    token = csrf_of(page.text)
    released = await http.post(
        f"/quarantine/{unscanned.version_id}/release", data={"csrf_token": token}
    )
    assert released.status_code == 303
    assert released.headers["location"].endswith("?done=released")
    listed = await http.get(f"{API}/folders/{world.acme_folder}", headers=world["sam"].auth)
    assert [d["name"] for d in listed.json()["documents"]] == ["huge.bin"]
    deleted = await http.post(
        f"/quarantine/{infected.version_id}/delete", data={"csrf_token": token}
    )
    assert deleted.status_code == 303
    page = await http.get(f"/folders/{world.acme_folder}")
    assert "quarantine-heading" not in page.text
    assert [e.action for e in await events(services, "quarantine.")] == [
        "quarantine.held",
        "quarantine.held",
        "quarantine.scanned",
        "quarantine.scanned",
        "quarantine.released",
        "quarantine.deleted",
    ]
    assert not [o async for o in services.store.list(infected.storage_key)]


async def test_the_scan_command_scans_what_is_pending(
    http: httpx.AsyncClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    await upload(http, world["alice"].auth, world.acme_folder, "cli.txt", b"cli", expect=202)
    config = tmp_path / "clientvault.toml"
    config.write_text(
        "\n".join(
            [
                f"data_dir = {json.dumps(str(settings.data_dir))}",
                "[database]",
                f"url = {json.dumps(settings.database.url)}",
                "[storage]",
                "part_size_mib = 5",
                "[scan]",
                f"clamd_socket = {json.dumps(settings.scan.clamd_socket)}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    assert ok(await cli_async(config, "scan", "ping")) == "ok"
    ok(await cli_async(config, "scan", "run", "--once"))
    assert await folder_names(http, world) == ["cli.txt"]
