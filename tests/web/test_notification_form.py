"""The account page's one notification form, driven without JavaScript: one choice for all the
person's clients, any client set apart from it, saved in one transaction and audited per
client as every preference change is; someone else's client refused with nothing changed."""

from __future__ import annotations

import json
import re
import uuid

import httpx
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import account_csrf, alert_text, parse, post_forms
from tests.fixtures.signin import sign_in
from vault import folders as folder_service
from vault.accounts.users import grant_access
from vault.db import transaction
from vault.models import AuditEvent, User
from vault.policy import SYSTEM
from web.services import Services

API = "/api/v1"


async def give_clients(services: Services, user_id: uuid.UUID, *names: str) -> list[uuid.UUID]:
    async with transaction(services.sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        ids = []
        for name in names:
            client = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, name)
            await grant_access(session, TEST_CONTEXT, user, client.id)
            ids.append(client.id)
        return ids


async def settings_of(http: httpx.AsyncClient) -> dict[str, tuple[str, int, bool]]:
    entries = (await http.get(f"{API}/me/notifications")).json()["clients"]
    return {e["client_id"]: (e["cadence"], e["daily_hour"], e["is_default"]) for e in entries}


async def preference_events(services: Services) -> list[dict[str, object]]:
    async with transaction(services.sessions) as session:
        rows = (
            await session.execute(
                select(AuditEvent)
                .where(col(AuditEvent.action) == "notification.preference_changed")
                .order_by(col(AuditEvent.seq))
            )
        ).scalars()
        return [{"client_id": e.client_id, **json.loads(e.details)} for e in rows]


async def test_one_choice_sets_every_client_at_once(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    initech, umbrella = await give_clients(services, world["sam"].id, "Initech", "Umbrella")
    await sign_in(http, world["sam"], second_factor=True)
    page = (await http.get("/account")).text
    # One form for the three clients, not one each; each client is named in it.
    [form] = [f for f in post_forms(page) if f.action == "/account/notifications"]
    section = page[page.index('id="notifications"') : page.index('id="invite"')]
    assert section.count("<form") == 1 and section.count('type="hidden" name="client_id"') == 3
    assert "For all your clients" in page
    # Nothing set apart yet: every client follows the choice for all, and the list is closed.
    assert '<details class="notify-each">' in page
    assert len(re.findall(r'<option value="" selected>Same as all clients</option>', page)) == 3
    assert form.fields["csrf_token"]

    token = await account_csrf(http)
    saved = await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": [str(world.acme), str(initech), str(umbrella)],
            "cadence": "daily",
            "daily_hour": "6",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account?done=notifications-saved#notifications"
    assert await settings_of(http) == {
        str(c): ("daily", 6, False) for c in (world.acme, initech, umbrella)
    }
    events = await preference_events(services)
    assert {e["client_id"] for e in events} == {str(c) for c in (world.acme, initech, umbrella)}
    assert all(e["via"] == "settings" and e["cadence"] == "daily" for e in events)

    # Saved again unchanged: nothing is stored, nothing is logged.
    again = await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": [str(world.acme), str(initech), str(umbrella)],
            "cadence": "daily",
            "daily_hour": "6",
        },
    )
    assert again.status_code == 303 and len(await preference_events(services)) == 3


async def test_a_client_set_differently_keeps_its_own_setting(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    initech, umbrella = await give_clients(services, world["sam"].id, "Initech", "Umbrella")
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    saved = await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": [str(world.acme), str(initech), str(umbrella)],
            "cadence": "hourly",
            "daily_hour": "9",
            f"cadence_{initech}": "daily",
            f"daily_hour_{initech}": "17",
            f"cadence_{umbrella}": "",  # same as all clients
            f"daily_hour_{umbrella}": "3",
        },
    )
    assert saved.status_code == 303
    staff_default_hour = services.settings.notify.daily_hour
    assert await settings_of(http) == {
        str(world.acme): ("hourly", staff_default_hour, False),
        str(initech): ("daily", 17, False),
        str(umbrella): ("hourly", staff_default_hour, False),
    }
    # The page shows the choice most clients have for all, and Initech set apart, open.
    page = (await http.get("/account")).text
    assert '<details class="notify-each" open>' in page
    shared = page[page.index('id="notify-cadence"') :]
    assert re.match(
        r'[^>]*>\s*(<option[^>]*>[^<]*</option>\s*)*?<option value="hourly" selected>', shared
    )
    initech_select = page[page.index(f'id="cadence-{initech}"') :]
    assert re.match(
        r'[^>]*>\s*(<option[^>]*>[^<]*</option>\s*)*?<option value="daily" selected>',
        initech_select,
    )
    assert re.search(
        rf'id="hour-{initech}"[^>]*>\s*(<option[^>]*>[^<]*</option>)*?'
        r'<option value="17" selected>17:00</option>',
        page,
    )
    assert "1 set differently" in page


async def test_someone_elses_client_is_refused_and_nothing_changes(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    token = await account_csrf(http)
    for clients in ([str(world.globex)], [str(world.acme), str(world.globex)], ["nonsense"]):
        refused = await http.post(
            "/account/notifications",
            data={"csrf_token": token, "client_id": clients, "cadence": "off"},
        )
        assert refused.status_code == 404
    # A field for another client, without it being named, changes nothing of it.
    await http.post(
        "/account/notifications",
        data={
            "csrf_token": token,
            "client_id": str(world.acme),
            "cadence": "hourly",
            f"cadence_{world.globex}": "off",
        },
    )
    assert await settings_of(http) == {str(world.acme): ("hourly", 8, False)}
    assert [e["client_id"] for e in await preference_events(services)] == [str(world.acme)]


async def test_a_value_the_form_does_not_offer_changes_no_client(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    (initech,) = await give_clients(services, world["sam"].id, "Initech")
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    for data in (
        {"cadence": "weekly"},
        {"cadence": "hourly", f"cadence_{initech}": "weekly"},
        {"cadence": "hourly", f"cadence_{initech}": "daily", f"daily_hour_{initech}": "24"},
    ):
        refused = await http.post(
            "/account/notifications",
            data={"csrf_token": token, "client_id": [str(world.acme), str(initech)], **data},
        )
        assert refused.status_code == 422
        assert "Choose how often" in alert_text(refused.text)
        assert "notification-error" in parse(refused.text).ids
    assert all(is_default for _, _, is_default in (await settings_of(http)).values())
    assert await preference_events(services) == []


async def test_without_clients_named_the_choice_is_for_every_client(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    (initech,) = await give_clients(services, world["sam"].id, "Initech")
    await sign_in(http, world["sam"], second_factor=True)
    token = await account_csrf(http)
    saved = await http.post("/account/notifications", data={"csrf_token": token, "cadence": "off"})
    assert saved.status_code == 303
    assert {c: s[0] for c, s in (await settings_of(http)).items()} == {
        str(world.acme): "off",
        str(initech): "off",
    }


async def test_one_client_shows_one_choice_named_for_it(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    page = (await http.get("/account")).text
    assert "For \u2068Acme\u2069" in page or "For Acme" in page
    assert "notify-each" not in page and "Same as all clients" not in page
