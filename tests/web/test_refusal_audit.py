"""Refused requests leave an `access.denied` event (issue 13, item 3; ASVS 5.0 16.3.2),
written after the refused transaction rolled back, on the API and on the pages."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.signin import sign_in
from vault import refusals
from vault.db import transaction
from vault.models import AuditEvent
from web.services import Services

API = "/api/v1"


async def denied(services: Services) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith("access."))
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


def details(event: AuditEvent) -> dict[str, object]:
    """The event's details without the request id that a request's own events carry."""
    found: dict[str, object] = json.loads(event.details)
    found.pop("request_id", None)
    return found


async def test_cross_client_api_404_is_audited_with_route_and_id(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    bob = world["bob"]
    answer = await http.get(f"{API}/folders/{world.acme_folder}", headers=bob.auth)
    assert answer.status_code == 404
    [event] = await denied(services)
    assert (event.action, event.outcome) == ("access.denied", "denied")
    assert (event.actor_id, event.actor_role) == (str(bob.id), "client")
    assert (event.target_type, event.target_id) == ("folder", str(world.acme_folder))
    assert details(event) == {
        "method": "GET",
        "route": "/api/v1/folders/{folder_id}",
        "reason": "not_found",
        "status": 404,
    }


async def test_invented_id_is_audited_as_given(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    answer = await http.get(f"{API}/documents/not-an-id", headers=world["alice"].auth)
    assert answer.status_code == 404
    [event] = await denied(services)
    assert (event.target_type, event.target_id) == ("document", "not-an-id")
    assert details(event)["route"] == "/api/v1/documents/{document_id}"


async def test_role_refusal_is_audited(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    answer = await http.post(f"{API}/clients", json={"name": "Mine"}, headers=world["alice"].auth)
    assert answer.status_code == 403
    [event] = await denied(services)
    assert event.actor_id == str(world["alice"].id)
    assert details(event) == {
        "method": "POST",
        "route": "/api/v1/clients",
        "reason": "forbidden",
        "status": 403,
    }


async def test_bad_bearer_token_is_audited_without_the_token(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    secret = "cv_" + "x" * 40
    answer = await http.get(f"{API}/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401
    [event] = await denied(services)
    assert event.actor_id is None
    assert event.ip is not None
    assert details(event)["reason"] == "invalid_token"
    row = " ".join(str(v) for v in event.model_dump().values())
    assert secret not in row


async def test_cross_client_page_404_is_audited(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["bob"], second_factor=True)
    answer = await http.get(f"/folders/{world.acme_folder}")
    assert answer.status_code == 404
    events = [e for e in await denied(services) if e.target_id == str(world.acme_folder)]
    [event] = events
    assert event.actor_id == str(world["bob"].id)
    assert details(event) == {
        "method": "GET",
        "route": "/folders/{folder_id}",
        "reason": "not_found",
        "status": 404,
    }


async def test_csrf_refusal_is_audited(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    # The session cookie without the session's CSRF token: what a forged form would send.
    answer = await http.post(f"{API}/folders", json={"client_id": str(world.acme), "name": "x"})
    assert answer.status_code == 403
    page = await http.post("/account/profile", data={"csrf_token": "forged", "display_name": "x"})
    assert page.status_code == 403
    events = await denied(services)
    assert [(details(e)["route"], details(e)["reason"]) for e in events] == [
        ("/api/v1/folders", "csrf"),
        ("/account/profile", "csrf"),
    ]
    assert {e.actor_id for e in events} == {str(world["alice"].id)}


async def test_reset_token_in_the_path_is_not_recorded(
    http: httpx.AsyncClient, services: Services
) -> None:
    secret = "a" * 43
    for path in ("/reset/", "/invite/", "/unsubscribe/", f"{API}/me?token="):
        answer = await http.get(path + secret, headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code < 500
    assert await denied(services)
    for event in await denied(services):
        assert secret not in event.details
        assert event.target_id != secret


async def test_a_flood_of_refusals_is_capped_and_summarised(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    bob = world["bob"]
    for _ in range(refusals.Limits().per_window + 15):
        answer = await http.get(f"{API}/folders/{uuid.uuid4()}", headers=bob.auth)
        assert answer.status_code == 404
    assert len(await denied(services)) == refusals.Limits().per_window
    # The window row is shared by every process through the database; close it as a
    # minute later would, and the next refusal (of anyone) writes the summary.
    async with transaction(services.sessions) as session:
        window = (await session.execute(select(refusals.RefusalWindow))).scalar_one()
        window.window_started_at -= refusals.Limits().window
        session.add(window)
    answer = await http.get(f"{API}/folders/{uuid.uuid4()}", headers=bob.auth)
    events = await denied(services)
    summary = events[-2]
    assert (summary.action, summary.outcome) == ("access.denied_suppressed", "denied")
    assert summary.actor_id == str(bob.id)
    assert details(summary)["suppressed"] == 15
    assert details(summary)["reason"] == "not_found"
    assert events[-1].action == "access.denied"
