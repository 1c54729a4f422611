"""The console under /admin, driven through its pages in-process: who may open which part,
the People actions with what they end at once, clients archived read-only, operations and
reports. The browser flow with screenshots is in test_console_browser.py."""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.notify import failed_email
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, enrol, form_for
from tests.fixtures.session_api import outbox_messages
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault.db import transaction
from vault.models import AuditEvent, Client, ClientAccess, User
from vault.notifications import Notification
from vault.policy import SYSTEM
from web.pages.console_reports import _cell as csv_cell
from web.services import Services


async def events(services: Services, prefix: str) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith(prefix))
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


def details(event: AuditEvent) -> dict[str, object]:
    found: dict[str, object] = json.loads(event.details)
    found.pop("request_id", None)
    return found


async def test_console_is_missing_for_clients_and_auditors(
    http: httpx.AsyncClient, world: World
) -> None:
    for name in ("alice", "otto"):
        http.cookies.clear()
        await sign_in(http, world[name], second_factor=True)
        for path in ("/admin", "/admin/people", "/admin/clients", "/admin/operations"):
            assert (await http.get(path)).status_code == 404, (name, path)
        assert (await http.get("/admin/reports")).status_code == 404
        assert (await http.get(f"/admin/people/{world['sam'].id}")).status_code == 404


async def test_admin_disables_a_client_user_whose_session_and_token_stop_at_once(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(browser, world["alice"], second_factor=True)
    assert (await browser.get("/")).status_code == 200
    assert (await browser.get("/api/v1/me", headers=world["alice"].auth)).status_code == 200

    await sign_in(http, world["ada"], second_factor=True)
    listing = await http.get("/admin/people?q=ALICE")
    assert listing.status_code == 200
    assert "alice@example.test" in listing.text and "bob@example.test" not in listing.text
    path = f"/admin/people/{world['alice'].id}"
    page = await http.get(path)
    done = await http.post(f"{path}/disable", data=form_for(page.text, f"{path}/disable"))
    assert done.status_code == 303 and done.headers["location"] == f"{path}?done=disabled"

    # Both the open browser session and the personal access token are refused at once.
    home = await browser.get("/")
    assert (home.status_code, home.headers.get("location")) == (303, "/login")
    me = await http.get("/api/v1/me", headers=world["alice"].auth)
    assert me.status_code == 401
    [event] = await events(services, "user.disabled")
    assert event.actor_id == str(world["ada"].id) and event.target_id == str(world["alice"].id)
    assert details(event) == {"sessions_ended": 1, "tokens_revoked": 1}

    page = await http.get(path)
    assert "Disabled" in page.text
    enabled = await http.post(f"{path}/enable", data=form_for(page.text, f"{path}/enable"))
    assert enabled.status_code == 303
    assert [e.action for e in await events(services, "user.enabled")] == ["user.enabled"]


async def test_staff_see_only_their_clients_users_and_may_not_change_roles(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    listing = await http.get("/admin/people")
    assert listing.status_code == 200
    assert "alice@example.test" in listing.text
    for other in ("bob@", "gina@", "ada@", "otto@"):
        assert other not in listing.text
    assert (await http.get(f"/admin/people/{world['bob'].id}")).status_code == 404
    assert (await http.get("/admin/clients")).status_code == 404
    token = csrf_of(listing.text)
    alice = f"/admin/people/{world['alice'].id}"
    bob = f"/admin/people/{world['bob'].id}"
    refused = [
        await http.post(f"{alice}/role", data={"csrf_token": token, "role": "admin"}),
        await http.post(f"{bob}/reset-2fa", data={"csrf_token": token}),
        await http.post(f"{bob}/disable", data={"csrf_token": token}),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]
    # Without the CSRF token nothing happens, even for someone allowed.
    forged = await http.post(f"{alice}/disable", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert await events(services, "user.disabled") == []
    # Staff do disable a client user of their own client.
    page = await http.get(alice)
    done = await http.post(f"{alice}/disable", data=form_for(page.text, f"{alice}/disable"))
    assert done.status_code == 303
    assert len(await events(services, "user.disabled")) == 1


async def test_staff_invite_a_client_user_and_resend_the_invitation(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get("/admin/people")
    # Staff invite client users only, to their own clients.
    assert 'name="role" value="client"' in page.text and 'value="staff"' not in page.text
    assert str(world.acme) in page.text and str(world.globex) not in page.text
    fields = form_for(page.text, "/admin/people/invite")
    invited = await http.post(
        "/admin/people/invite",
        data={**fields, "email": "dora@acme.example.test", "client_id": str(world.acme)},
    )
    assert invited.status_code == 303, invited.text
    listing = await http.get("/admin/people?q=dora")
    assert "dora@acme.example.test" in listing.text and "Invited" in listing.text
    async with transaction(services.sessions) as session:
        dora = (
            await session.execute(select(User).where(User.email == "dora@acme.example.test"))
        ).scalar_one()
    path = f"/admin/people/{dora.id}"
    page = await http.get(path)
    resent = await http.post(f"{path}/resend", data=form_for(page.text, f"{path}/resend"))
    # The test configuration has no mail relay: the link is made, the email is not sent.
    assert resent.status_code == 303
    assert resent.headers["location"].split("done=")[1] in ("resent", "unsent")
    [event] = await events(services, "user.invitation_resent")
    assert event.actor_id == str(world["sam"].id) and event.target_id == str(dora.id)
    # A client of another staff member's client cannot be invited through this form.
    refused = await http.post(
        "/admin/people/invite",
        data={**fields, "email": "eve@example.test", "client_id": str(world.globex)},
    )
    assert refused.status_code == 422


async def test_admin_changes_role_assigns_client_and_resets_second_factor(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(browser, world["sam"], second_factor=True)  # staff enrol TOTP on the way in
    await sign_in(http, world["ada"], second_factor=True)
    sam = f"/admin/people/{world['sam'].id}"
    page = await http.get(sam)
    assert "Two-step sign-in" in page.text and "reset-2fa" in page.text
    fields = form_for(page.text, f"{sam}/clients")
    assigned = await http.post(
        f"{sam}/clients", data={**fields, "client_id": str(world.globex), "change": "add"}
    )
    assert assigned.status_code == 303
    [granted] = await events(services, "user.access_granted")
    assert granted.client_id == str(world.globex) and granted.target_id == str(world["sam"].id)

    page = await http.get(sam)
    reset = await http.post(f"{sam}/reset-2fa", data=form_for(page.text, f"{sam}/reset-2fa"))
    assert reset.status_code == 303 and reset.headers["location"].endswith("done=mfa-reset")
    [mfa_event] = await events(services, "mfa.reset")
    assert mfa_event.actor_id == str(world["ada"].id)
    assert details(mfa_event) == {"had_totp": True}
    assert (await browser.get("/")).headers.get("location") == "/login"

    page = await http.get(sam)
    changed = await http.post(
        f"{sam}/role", data={**form_for(page.text, f"{sam}/role"), "role": "auditor"}
    )
    assert changed.status_code == 303
    [role_event] = await events(services, "user.role_changed")
    assert details(role_event)["from"] == "staff" and details(role_event)["to"] == "auditor"


async def test_archived_client_is_read_only_hidden_and_restorable(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    page = await http.get("/admin/clients")
    created = await http.post(
        "/admin/clients", data={**form_for(page.text, "/admin/clients"), "name": "Initech"}
    )
    assert created.status_code == 303
    async with transaction(services.sessions) as session:
        initech = (
            await session.execute(select(Client).where(Client.name == "Initech"))
        ).scalar_one()
    path = f"/admin/clients/{initech.id}"
    made = await http.post(
        "/api/v1/folders",
        json={"client_id": str(initech.id), "name": "Inbox"},
        headers=world["ada"].auth,
    )
    assert made.status_code == 201, made.text
    inbox = made.json()["id"]
    page = await http.get(path)
    # Another client's name is refused on the page itself, the name kept for correcting.
    refused = await http.post(
        f"{path}/rename", data={**form_for(page.text, f"{path}/rename"), "name": "Acme"}
    )
    assert refused.status_code == 422
    assert "A client with this name already exists." in refused.text
    assert 'value="Acme" aria-invalid="true"' in refused.text
    renamed = await http.post(
        f"{path}/rename", data={**form_for(page.text, f"{path}/rename"), "name": "Initrode"}
    )
    assert renamed.status_code == 303
    page = await http.get(path)
    shared = await http.post(f"{path}/shared", data=form_for(page.text, f"{path}/shared"))
    assert shared.status_code == 303 and shared.headers["location"].endswith("done=shared")
    async with transaction(services.sessions) as session:
        marked = await session.get(Client, initech.id)
        assert marked is not None and marked.shared
    page = await http.get(path)
    archived = await http.post(f"{path}/archive", data=form_for(page.text, f"{path}/archive"))
    assert archived.status_code == 303

    # Hidden from lists, still readable, refused for every change (in the domain policy).
    listed = (await http.get("/api/v1/clients", headers=world["ada"].auth)).json()
    assert "Initrode" not in json.dumps(listed)
    assert "Initrode" in (await http.get("/admin/clients?show=archived")).text
    folder = await http.post(
        "/api/v1/folders",
        json={"client_id": str(initech.id), "name": "New"},
        headers=world["ada"].auth,
    )
    assert folder.status_code == 403, folder.text
    upload = await http.put(
        f"/api/v1/folders/{inbox}/files/late.pdf", content=b"%PDF", headers=world["ada"].auth
    )
    assert upload.status_code == 403, upload.text
    assert (await http.get(f"/api/v1/folders/{inbox}", headers=world["ada"].auth)).is_success

    page = await http.get(path)
    restored = await http.post(f"{path}/restore", data=form_for(page.text, f"{path}/restore"))
    assert restored.status_code == 303
    folder = await http.post(
        "/api/v1/folders",
        json={"client_id": str(initech.id), "name": "New"},
        headers=world["ada"].auth,
    )
    assert folder.status_code == 201, folder.text
    # The reads in between (`client.viewed`, `client.listed`) are audited too: only the changes.
    actions = [
        e.action
        for e in await events(services, "client.")
        if not e.action.endswith((".viewed", ".listed"))
    ]
    assert actions[-5:] == [
        "client.created",
        "client.renamed",
        "client.shared",
        "client.archived",
        "client.restored",
    ]


async def test_operations_rotate_and_rewrap_keys(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    page = await http.get("/admin/operations")
    assert page.status_code == 200
    assert "Database" in page.text and "Not configured" in page.text
    before = len(services.keyring.key_ids)
    rotated = await http.post(
        "/admin/operations/keys/rotate",
        data=form_for(page.text, "/admin/operations/keys/rotate"),
    )
    assert rotated.status_code == 303
    services.keyring.reload()  # the app wrote the key file through its own keyring
    assert len(services.keyring.key_ids) == before + 1
    [event] = await events(services, "keys.rotated")
    assert event.actor_id == str(world["ada"].id)
    # The admin's own TOTP secret is still wrapped by the old KEK: one key to re-wrap.
    page = await http.get("/admin/operations")
    assert "1 of 1" not in page.text and "0 of 1 keys" in page.text
    rewrapped = await http.post(
        "/admin/operations/keys/rewrap",
        data=form_for(page.text, "/admin/operations/keys/rewrap"),
    )
    assert rewrapped.status_code == 303
    page = await http.get("/admin/operations")
    assert "Every key is on the active KEK." in page.text
    [requested] = await events(services, "keys.rewrap_requested")
    assert requested.actor_id == str(world["ada"].id)


async def test_failed_emails_are_listed_with_their_error_and_retried(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        for n in range(2):
            session.add(failed_email(world["alice"], world.acme, f"New documents {n}", attempts=8))
    await sign_in(http, world["ada"], second_factor=True)
    page = await http.get("/admin/operations")
    assert page.text.count("550 mailbox unavailable") == 2
    async with transaction(services.sessions) as session:
        first = (
            await session.execute(
                select(Notification).where(Notification.subject == "New documents 0")
            )
        ).scalar_one()
    one = f"/admin/operations/outbox/{first.id}/retry"
    assert (await http.post(one, data=form_for(page.text, one))).status_code == 303
    page = await http.get("/admin/operations")
    assert page.text.count("550 mailbox unavailable") == 1
    every = "/admin/operations/outbox/retry-all"
    assert (await http.post(every, data=form_for(page.text, every))).status_code == 303
    assert "No failed messages" in (await http.get("/admin/operations")).text
    assert len(await events(services, "notification.retried")) == 2


async def test_reports_draw_charts_and_export_csv(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/admin/reports?client_id={world.acme}")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 2
    assert (await http.get(f"/admin/reports?client_id={world.globex}")).status_code == 404
    exported = await http.get(f"/admin/reports/{world.acme}/weeks.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["week_start", "uploads", "downloads", "stored_bytes"]
    assert len(rows) == 13
    refused = await http.get(f"/admin/reports/{world.globex}/weeks.csv")
    assert refused.status_code == 404
    [event] = await events(services, "report.exported")
    assert event.client_id == str(world.acme)
    assert (await http.get(f"/admin/reports/{uuid.uuid4()}/nope.csv")).status_code == 404


def test_csv_cells_never_start_a_spreadsheet_formula() -> None:
    assert [csv_cell(v) for v in ("=HYPERLINK(1)", "+1", "-1", "@SUM", "Bank", 3)] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-1",
        "'@SUM",
        "Bank",
        "3",
    ]


async def test_an_admin_cannot_disable_themselves_and_is_told_so(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    own = f"/admin/people/{world['ada'].id}"
    page = await http.get(own)
    assert "This is your own account." in page.text and f"{own}/disable" not in page.text
    refused = await http.post(f"{own}/disable", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409
    assert "Already done" in refused.text
    assert await events(services, "user.disabled") == []


async def test_staff_reset_second_factor_and_add_their_client_users_to_their_own_clients(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        initech = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Initech")
        session.add(ClientAccess(user_id=world["sam"].id, client_id=initech.id))
    await sign_in(browser, world["alice"])
    await enrol(browser, password=world["alice"].password)  # by choice: clients need not
    mails = len(outbox_messages(services))
    await sign_in(http, world["sam"], second_factor=True)
    alice = f"/admin/people/{world['alice'].id}"
    page = await http.get(alice)
    assert f"{alice}/reset-2fa" in page.text and f"{alice}/role" not in page.text
    # Sam's other client is offered, another staff member's is not; alice's only client
    # cannot be taken away by staff.
    assert str(initech.id) in page.text and str(world.globex) not in page.text
    assert 'value="remove"' not in page.text

    reset = await http.post(f"{alice}/reset-2fa", data=form_for(page.text, f"{alice}/reset-2fa"))
    assert reset.status_code == 303 and reset.headers["location"].endswith("done=mfa-reset")
    [mfa_event] = await events(services, "mfa.reset")
    assert mfa_event.actor_id == str(world["sam"].id)
    assert mfa_event.target_id == str(world["alice"].id)
    assert (await browser.get("/")).headers.get("location") == "/login"
    [told] = outbox_messages(services)[mails:]
    assert told["To"] == "alice@example.test"

    page = await http.get(alice)
    clients = f"{alice}/clients"
    add = {**form_for(page.text, clients), "client_id": str(initech.id), "change": "add"}
    assert (await http.post(clients, data=add)).status_code == 303
    [granted] = await events(services, "user.access_granted")
    assert granted.actor_id == str(world["sam"].id) and granted.client_id == str(initech.id)
    page = await http.get(alice)
    assert "Initech" in page.text and page.text.count('value="remove"') == 2
    remove = {**add, "change": "remove"}
    assert (await http.post(clients, data=remove)).status_code == 303
    # The last client stays: without it alice would be out of sam's reach.
    last = {**add, "client_id": str(world.acme), "change": "remove"}
    assert (await http.post(clients, data=last)).status_code == 409

    # Another staff member's client, or another client's user: not there (404).
    token = csrf_of(page.text)
    bob = f"/admin/people/{world['bob'].id}"
    refused = [
        await http.post(clients, data={**add, "client_id": str(world.globex)}),
        await http.post(f"{bob}/clients", data={**add, "csrf_token": token}),
        await http.post(f"{bob}/reset-2fa", data={"csrf_token": token}),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]
    assert len(await events(services, "user.access_granted")) == 1
    assert len(await events(services, "user.access_revoked")) == 1
    assert len(await events(services, "mfa.reset")) == 1
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(ClientAccess.client_id).where(ClientAccess.user_id == world["alice"].id)
        )
        assert set(rows.scalars()) == {world.acme}
