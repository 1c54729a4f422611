"""A client's link policy: admins set it on the console's client page (audited as
`link.policy_changed`), and three of its overrides, set through the API, change what a new
link needs and whether a drop is held for a scan."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.dates import soon
from tests.fixtures.pages import csrf_of
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services
from web.settings import Settings

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Drops are scanned by default, with no scanner: a held drop stays held ("not scanned").
    links = settings.links.model_copy(update={"scan_drops": True})
    scan = settings.scan.model_copy(update={"worker": False, "unscanned": "hold"})
    return settings.model_copy(update={"links": links, "scan": scan})


async def changed_events(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "link.policy_changed")
            .order_by(col(AuditEvent.seq))
        )
        return list(found.scalars().all())


async def test_an_admin_sets_a_clients_link_policy_on_the_console(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    page_path = f"/admin/clients/{world.acme}"
    page = await http.get(page_path)
    assert page.status_code == 200 and 'id="link-policy"' in page.text
    assert "The firm&#39;s default (yes)" in page.text or "The firm's default (yes)" in page.text
    csrf = csrf_of(page.text)
    action = f"{page_path}/link-policy"
    saved = await http.post(
        action,
        data={
            "csrf_token": csrf,
            "allowed": "",
            "creators": "staff_and_clients",
            "max_expiry_days": "7",
            "require_password": "yes",
            "require_recipient": "",
            "scan_drops": "no",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{page_path}?done=link_policy#link-policy"
    [event] = await changed_events(services)
    assert event.client_id == str(world.acme) and event.actor_role == "admin"
    overrides = json.loads(event.details)["overrides"]
    assert overrides == {
        "allowed": None,
        "creators": "staff_and_clients",
        "max_expiry_days": 7,
        "require_password": True,
        "require_recipient": None,
        "scan_drops": False,
    }
    api = await http.get(f"{API}/clients/{world.acme}/link-policy", headers=world["ada"].auth)
    assert api.json()["effective"]["scan_drops"] is False
    assert api.json()["effective"]["max_expiry_days"] == 7
    shown = await http.get(f"{page_path}?done=link_policy")
    assert "link policy was saved" in shown.text
    assert '<option value="no" selected>' in shown.text
    assert 'name="max_expiry_days"' in shown.text and 'value="7"' in shown.text

    # A value the policy does not take: the page again, nothing changed, nothing audited.
    csrf = csrf_of(shown.text)
    refused = await http.post(
        action, data={"csrf_token": csrf, "max_expiry_days": "0", "scan_drops": "yes"}
    )
    assert refused.status_code == 422 and 'id="link-policy-error"' in refused.text
    assert len(await changed_events(services)) == 1
    # Staff have no such page; a forged form changes nothing.
    forged = await http.post(action, data={"csrf_token": "wrong", "scan_drops": "yes"})
    assert forged.status_code == 403
    await sign_in(http, world["sam"], second_factor=True)
    staff = await http.post(
        action, data={"csrf_token": csrf_of((await http.get("/")).text), "scan_drops": "yes"}
    )
    assert staff.status_code == 404
    assert len(await changed_events(services)) == 1


async def put_policy(http: httpx.AsyncClient, world: World, client: object, **body: object) -> None:
    response = await http.put(
        f"{API}/clients/{client}/link-policy", json=body, headers=world["ada"].auth
    )
    assert response.status_code == 200, response.text


async def new_link(http: httpx.AsyncClient, world: World, **body: object) -> httpx.Response:
    return await http.post(
        f"{API}/folders/{world.acme_folder}/links",
        json={"kind": "download", "expires_at": soon(), **body},
        headers=world["sam"].auth,
    )


async def test_require_password_and_require_recipient_refuse_links_without_them(
    http: httpx.AsyncClient, world: World
) -> None:
    assert (await new_link(http, world)).status_code == 201
    await put_policy(http, world, world.acme, require_password=True)
    bare = await new_link(http, world)
    assert bare.status_code == 422 and bare.json()["field"] == "password"
    locked = await new_link(http, world, password="a long passphrase for the bank")
    assert locked.status_code == 201, locked.text

    await put_policy(http, world, world.acme, require_password=None, require_recipient=True)
    bare = await new_link(http, world)
    assert bare.status_code == 422 and bare.json()["field"] == "recipient_email"
    addressed = await new_link(http, world, recipient_email="bank@example.test")
    assert addressed.status_code == 201, addressed.text
    # Another client keeps the firm's defaults.
    other = await http.post(
        f"{API}/folders/{world.globex_folder}/links",
        json={"kind": "download", "expires_at": soon()},
        headers=world["gina"].auth,
    )
    assert other.status_code == 201


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def drop(http: httpx.AsyncClient, world: World, staff: str, folder: object) -> None:
    created = await http.post(
        f"{API}/folders/{folder}/links",
        json={"kind": "upload", "expires_at": soon()},
        headers=world[staff].auth,
    )
    assert created.status_code == 201, created.text
    token = created.json()["url"].rsplit("/s/", 1)[1]
    data = b"bank statement"
    meta = metadata(filename="statement.txt", uploader_name="Dana", uploader_email="d@bank.test")
    started = await http.post(
        f"/s/{token}/uploads",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
    )
    assert started.status_code == 201, started.text
    sent = await http.patch(
        started.headers["location"],
        content=data,
        headers={
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert sent.status_code == 204, sent.text


async def listed(http: httpx.AsyncClient, world: World, staff: str, folder: object) -> list[str]:
    response = await http.get(f"{API}/folders/{folder}", headers=world[staff].auth)
    return [d["name"] for d in response.json()["documents"]]


async def test_a_client_with_scan_drops_off_publishes_drops_without_a_scan(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await put_policy(http, world, world.acme, scan_drops=False)
    await drop(http, world, "sam", world.acme_folder)
    await drop(http, world, "gina", world.globex_folder)
    # Acme's drop is published at once; Globex keeps the firm's default and holds its drop.
    assert await listed(http, world, "sam", world.acme_folder) == ["statement.txt"]
    assert await listed(http, world, "gina", world.globex_folder) == []
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "document.created")
        )
        created = {e.client_id: json.loads(e.details) for e in found.scalars().all()}
    assert set(created) == {str(world.acme)}
    assert created[str(world.acme)].get("scan") in (None, "off", "not_scanned", "skipped")
