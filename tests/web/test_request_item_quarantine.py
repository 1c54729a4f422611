"""A request-item upload held by quarantine (`[scan] all_uploads`), against a real clamd:
the client sees it waiting for the scan, and it is submitted for its item, for its
uploader, when the scan passes (or staff release it); an infected one never is."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.clamd import EICAR, ClamdServer
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of
from tests.fixtures.quarantine import held_rows, scan_all
from tests.fixtures.request_uploads import item_row, open_request, tus_upload
from tests.fixtures.signin import sign_in
from vault import scanning
from vault.models import AuditEvent
from vault.quarantine_tables import ScanState
from vault.request_tables import ItemStatus
from web.services import Services
from web.settings import ScanSettings, Settings

WAITING = "A file is waiting for the virus scan"


@pytest.fixture
def settings(settings: Settings, clamd: ClamdServer) -> Settings:
    # The tests run the scans themselves, one at a time.
    scan = ScanSettings(all_uploads=True, clamd_socket=str(clamd.socket), worker=False)
    return settings.model_copy(update={"scan": scan})


async def submissions(services: Services) -> list[AuditEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "request.submitted")
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars())


async def test_a_held_item_upload_is_submitted_when_its_scan_passes(
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    held = await tus_upload(
        http, world["alice"].auth, b"%PDF clean", filename="w2.pdf", request_item_id=str(item_id)
    )
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
    await sign_in(browser, world["alice"])
    page = await browser.get(f"/requests/{request_id}")
    assert WAITING in page.text

    assert await scan_all(services, settings) == 1
    [row] = await held_rows(services)
    assert row.state == ScanState.CLEAN and row.published_version == 1
    item = await item_row(services, item_id)
    assert item.status == ItemStatus.SUBMITTED
    assert str(item.document_id) == held.headers["document-id"] == str(row.document_id)
    assert item.submitted_by == world["alice"].id
    [event] = await submissions(services)
    assert json.loads(event.details)["item_id"] == str(item_id)
    page = await browser.get(f"/requests/{request_id}")
    assert WAITING not in page.text and f'href="/documents/{row.document_id}"' in page.text


async def test_an_infected_item_upload_is_never_submitted(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    _request_id, (item_id,) = await open_request(services, world)
    await tus_upload(
        http, world["alice"].auth, EICAR, filename="virus.com", request_item_id=str(item_id)
    )
    assert await scan_all(services, settings) == 1
    [row] = await held_rows(services)
    assert row.state == ScanState.INFECTED and row.published_version is None
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
    assert await submissions(services) == []


async def test_a_form_upload_not_scanned_is_submitted_when_staff_release_it(
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    await sign_in(browser, world["alice"])
    page = await browser.get(f"/requests/{request_id}")
    sent = await browser.post(
        f"/requests/{request_id}/items/{item_id}/upload",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("scan.pdf", b"%PDF paper", "application/pdf")},
    )
    assert sent.status_code == 303, sent.text
    assert "done=scanning" in sent.headers["location"]
    shown = await browser.get(sent.headers["location"].split("#")[0])
    assert "They are submitted as soon as the virus scan passes" in shown.text
    assert WAITING in shown.text
    # No scanner answers: it stays held, not scanned, until staff decide.
    assert await scan_all(services, settings, scanner=None) == 1
    [row] = await held_rows(services)
    assert row.state == ScanState.NOT_SCANNED and row.published_version is None
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED

    await sign_in(http, world["sam"], second_factor=True)
    folder = await http.get(f"/folders/{world.acme_folder}")
    released = await http.post(
        f"/quarantine/{row.version_id}/release", data={"csrf_token": csrf_of(folder.text)}
    )
    assert released.status_code == 303, released.text
    item = await item_row(services, item_id)
    assert item.status == ItemStatus.SUBMITTED and item.document_id == row.document_id
    # Submitted for its uploader, though staff's word published it.
    assert item.submitted_by == world["alice"].id
    assert len(await submissions(services)) == 1


async def test_an_upload_held_while_its_request_closes_stays_unsubmitted(
    http: httpx.AsyncClient, world: World, services: Services, settings: Settings
) -> None:
    request_id, (item_id,) = await open_request(services, world)
    await tus_upload(
        http, world["alice"].auth, b"late", filename="late.pdf", request_item_id=str(item_id)
    )
    closed = await http.post(f"/api/v1/requests/{request_id}/close", headers=world["sam"].auth)
    assert closed.status_code == 200
    assert await scan_all(services, settings, unscanned=scanning.Unscanned.PUBLISH) == 1
    [row] = await held_rows(services)
    # Published in its folder all the same; the closed request was not changed.
    assert row.published_version == 1
    assert (await item_row(services, item_id)).status == ItemStatus.REQUESTED
    assert await submissions(services) == []
