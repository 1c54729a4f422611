"""Document requests through the API: the item life cycle, recurrence, ordering and who may do
what, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from vault.db import transaction
from vault.models import AuditEvent
from vault.request_tables import add_months
from web.services import Services

API = "/api/v1"


def today(days: int = 0) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


async def ask(
    http: httpx.AsyncClient,
    world: World,
    *,
    who: str = "sam",
    client: str = "acme",
    due: date | None = None,
    items: list[str] | None = None,
    **more: Any,
) -> httpx.Response:
    client_id = world.acme if client == "acme" else world.globex
    folder_id = world.acme_folder if client == "acme" else world.globex_folder
    body = {
        "title": "Year end 2026",
        "due_date": (due or today(14)).isoformat(),
        "folder_id": str(folder_id),
        "items": items if items is not None else ["Bank statements", "Payroll summary"],
        **more,
    }
    return await http.post(
        f"{API}/clients/{client_id}/requests", json=body, headers=world[who].auth
    )


async def opened(http: httpx.AsyncClient, world: World, **options: Any) -> dict[str, Any]:
    response = await ask(http, world, **options)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def upload(
    http: httpx.AsyncClient, world: World, who: str, name: str, client: str = "acme"
) -> str:
    folder = world.acme_folder if client == "acme" else world.globex_folder
    response = await http.put(
        f"{API}/folders/{folder}/files/{name}", content=b"%PDF statement", headers=world[who].auth
    )
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["document_id"]
    return document_id


def item_url(request: dict[str, Any], index: int, verb: str) -> str:
    return f"{API}/requests/{request['id']}/items/{request['items'][index]['id']}/{verb}"


async def audit_events(services: Services, prefix: str) -> list[AuditEvent]:
    """The changes among the events whose action starts with `prefix` (not the reads)."""
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith(prefix))
            .where(col(AuditEvent.action).not_in(["request.listed", "request.viewed"]))
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


async def test_items_go_requested_submitted_rejected_accepted(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sam, alice = world["sam"].auth, world["alice"].auth
    request = await opened(http, world, message="Please send these by the due date.")
    assert request["client_id"] == str(world.acme) and request["recurrence"] == "none"
    assert [(i["name"], i["status"]) for i in request["items"]] == [
        ("Bank statements", "requested"),
        ("Payroll summary", "requested"),
    ]
    listed = (await http.get(f"{API}/clients/{world.acme}/requests", headers=alice)).json()
    assert [r["id"] for r in listed["requests"]] == [request["id"]]

    first = await upload(http, world, "alice", "statements.pdf")
    submitted = await http.post(
        item_url(request, 0, "submit"), json={"document_id": first}, headers=alice
    )
    assert submitted.status_code == 200, submitted.text
    item = submitted.json()["items"][0]
    assert item["status"] == "submitted" and item["document_id"] == first
    assert item["version"] == 1 and item["submitted_by"] == str(world["alice"].id)

    # A rejection needs its reason; the client then submits a new version.
    no_reason = await http.post(
        item_url(request, 0, "answer"), json={"status": "rejected"}, headers=sam
    )
    assert no_reason.status_code == 422
    rejected = await http.post(
        item_url(request, 0, "answer"),
        json={"status": "rejected", "reason": "Page 2 is missing"},
        headers=sam,
    )
    assert rejected.status_code == 200
    assert rejected.json()["items"][0]["status"] == "rejected"
    assert rejected.json()["items"][0]["reason"] == "Page 2 is missing"
    again = await upload(http, world, "alice", "statements.pdf")
    assert again == first
    resubmitted = await http.post(
        item_url(request, 0, "submit"), json={"document_id": first}, headers=alice
    )
    item = resubmitted.json()["items"][0]
    assert (item["status"], item["version"], item["reason"]) == ("submitted", 2, None)
    accepted = await http.post(
        item_url(request, 0, "answer"), json={"status": "accepted"}, headers=sam
    )
    assert [i["status"] for i in accepted.json()["items"]] == ["accepted", "requested"]
    assert accepted.json()["closed_at"] is None  # one item is still owed

    closed = await http.post(f"{API}/requests/{request['id']}/close", headers=sam)
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    assert (
        await http.post(f"{API}/requests/{request['id']}/close", headers=sam)
    ).status_code == 409
    late = await http.post(
        item_url(request, 1, "submit"), json={"document_id": first}, headers=alice
    )
    assert late.status_code == 409
    # Not recurring: nothing new opened.
    listed = (await http.get(f"{API}/clients/{world.acme}/requests", headers=alice)).json()
    assert [r["id"] for r in listed["requests"]] == [request["id"]]
    assert (await http.get(f"{API}/requests", headers=alice)).json() == {"requests": []}

    # Every change is in the audit log, in the shape the notifier reads.
    events = await audit_events(services, "request.")
    assert [e.action for e in events] == [
        "request.opened",
        "request.submitted",
        "request.answered",
        "request.submitted",
        "request.answered",
        "request.closed",
    ]
    assert all(e.client_id == str(world.acme) for e in events)
    details = [json.loads(e.details) for e in events]
    assert details[0]["name"] == "Year end 2026"
    assert details[0]["message"] == "Please send these by the due date."
    assert details[1]["name"] == "Bank statements" and events[1].document_id == first
    assert details[1]["request_id"] == request["id"] and details[1]["status"] == "submitted"
    assert details[1]["folder_id"] == str(world.acme_folder)
    assert (details[2]["status"], details[2]["reason"]) == ("rejected", "Page 2 is missing")
    assert events[1].actor_id == str(world["alice"].id)
    assert events[2].actor_id == str(world["sam"].id)


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        (date(2031, 1, 31), 1, 31, date(2031, 2, 28)),
        (date(2032, 1, 31), 1, 31, date(2032, 2, 29)),
        (date(2031, 2, 28), 1, 31, date(2031, 3, 31)),  # back on the series' day
        (date(2031, 11, 30), 3, 30, date(2032, 2, 29)),
        (date(2031, 12, 15), 1, 15, date(2032, 1, 15)),
        (date(2032, 2, 29), 12, 29, date(2033, 2, 28)),
    ],
)
def test_add_months_keeps_the_day_or_the_month_end(
    start: date, months: int, anchor: int, expected: date
) -> None:
    assert add_months(start, months, anchor) == expected


async def test_a_recurring_request_opens_its_next_occurrence(
    http: httpx.AsyncClient, world: World
) -> None:
    sam, alice = world["sam"].auth, world["alice"].auth
    january = await opened(
        http, world, due=date(2032, 1, 31), recurrence="monthly", items=["Invoices"]
    )
    document = await upload(http, world, "alice", "invoices-jan.pdf")
    await http.post(item_url(january, 0, "submit"), json={"document_id": document}, headers=alice)
    # Accepting the last item completes the request and opens the next month's.
    done = await http.post(item_url(january, 0, "answer"), json={"status": "accepted"}, headers=sam)
    assert done.json()["closed_at"] is not None
    [february] = (await http.get(f"{API}/requests", headers=sam)).json()["requests"]
    assert february["due_date"] == "2032-02-29" and february["previous_id"] == january["id"]
    assert february["recurrence"] == "monthly" and february["title"] == january["title"]
    assert [(i["name"], i["status"]) for i in february["items"]] == [("Invoices", "requested")]
    # Closed by hand, it recurs too, on the series' day again.
    await http.post(f"{API}/requests/{february['id']}/close", headers=sam)
    [march] = (await http.get(f"{API}/requests", headers=sam)).json()["requests"]
    assert march["due_date"] == "2032-03-31"
    all_of_them = (await http.get(f"{API}/clients/{world.acme}/requests", headers=sam)).json()
    assert [r["due_date"] for r in all_of_them["requests"]] == [
        "2032-03-31",
        "2032-01-31",
        "2032-02-29",
    ]  # the open one first, then the closed ones by due date

    quarterly = await opened(http, world, due=date(2031, 11, 30), recurrence="quarterly")
    await http.post(f"{API}/requests/{quarterly['id']}/close", headers=sam)
    yearly = await opened(http, world, due=date(2032, 2, 29), recurrence="yearly")
    await http.post(f"{API}/requests/{yearly['id']}/close", headers=sam)
    due = sorted(
        r["due_date"] for r in (await http.get(f"{API}/requests", headers=sam)).json()["requests"]
    )
    assert due == ["2032-02-29", "2032-03-31", "2033-02-28"]


async def test_open_requests_across_clients_overdue_first(
    http: httpx.AsyncClient, world: World
) -> None:
    later = await opened(http, world, due=today(10))
    overdue = await opened(http, world, due=today(-5))
    soon = await opened(http, world, due=today(2))
    closed = await opened(http, world, due=today(-9))
    await http.post(f"{API}/requests/{closed['id']}/close", headers=world["sam"].auth)
    globex = await opened(http, world, who="gina", client="globex", due=today(-20))

    for who in ("sam", "alice"):
        listed = (await http.get(f"{API}/requests", headers=world[who].auth)).json()["requests"]
        assert [r["id"] for r in listed] == [overdue["id"], soon["id"], later["id"]], who
        assert [r["overdue"] for r in listed] == [True, False, False]
    everything = (await http.get(f"{API}/requests", headers=world["ada"].auth)).json()
    assert [r["id"] for r in everything["requests"]] == [
        globex["id"],
        overdue["id"],
        soon["id"],
        later["id"],
    ]
    bob = (await http.get(f"{API}/requests", headers=world["bob"].auth)).json()
    assert [r["id"] for r in bob["requests"]] == [globex["id"]]
    assert (await http.get(f"{API}/requests", headers=world["otto"].auth)).json() == {
        "requests": []
    }


async def test_who_may_do_what(http: httpx.AsyncClient, world: World) -> None:
    sam, alice, gina, bob = (world[n].auth for n in ("sam", "alice", "gina", "bob"))
    # Clients cannot ask; other clients' staff and the auditor do not see the client at all.
    assert (await ask(http, world, who="alice")).status_code == 403
    assert (await ask(http, world, who="gina")).status_code == 404
    assert (await ask(http, world, who="otto")).status_code == 404
    assert (await ask(http, world, who="ada")).status_code == 201
    # Uploads go to a folder of the same client.
    elsewhere = await ask(http, world, folder_id=str(world.globex_folder))
    assert elsewhere.status_code == 404
    request = await opened(http, world)
    url = f"{API}/requests/{request['id']}"
    assert (await http.get(url, headers=alice)).status_code == 200
    for outsider in (gina, bob, world["otto"].auth):
        assert (await http.get(url, headers=outsider)).status_code == 404

    # Only an uploaded, live document of the same client can be submitted.
    theirs = await upload(http, world, "bob", "bobs.pdf", client="globex")
    for document_id in (theirs, str(uuid.uuid4())):
        response = await http.post(
            item_url(request, 0, "submit"), json={"document_id": document_id}, headers=alice
        )
        assert response.status_code == 404, document_id
    ours = await upload(http, world, "alice", "ours.pdf")
    wrong_version = await http.post(
        item_url(request, 0, "submit"), json={"document_id": ours, "version": 7}, headers=alice
    )
    assert wrong_version.status_code == 404
    # Nothing to answer before a submission; clients never answer or close.
    early = await http.post(
        item_url(request, 0, "answer"), json={"status": "accepted"}, headers=sam
    )
    assert early.status_code == 409
    await http.post(item_url(request, 0, "submit"), json={"document_id": ours}, headers=alice)
    answer = await http.post(
        item_url(request, 0, "answer"), json={"status": "accepted"}, headers=alice
    )
    assert answer.status_code == 403
    assert (await http.post(f"{url}/close", headers=alice)).status_code == 403
    assert (await http.post(f"{url}/close", headers=gina)).status_code == 404
    # An item of another request is not found under this one.
    other = await opened(http, world)
    crossed = f"{url}/items/{other['items'][0]['id']}/submit"
    assert (await http.post(crossed, json={"document_id": ours}, headers=alice)).status_code == 404
    after = (await http.get(url, headers=sam)).json()
    assert [i["status"] for i in after["items"]] == ["submitted", "requested"]
    assert after["closed_at"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"due_date": "31/01/2031"}, "due_date"),
        ({"items": []}, None),
        ({"items": "Bank statements"}, "items"),
        ({"items": ["  "]}, None),
        ({"recurrence": "weekly"}, "recurrence"),
        ({"title": ""}, None),
        ({"message": "x" * 2001}, None),
    ],
)
async def test_malformed_requests_are_refused(
    http: httpx.AsyncClient, world: World, change: dict[str, Any], field: str | None
) -> None:
    response = await ask(http, world, **change)
    assert response.status_code == 422, response.text
    if field is not None:
        assert response.json()["field"] == field
    assert (await http.get(f"{API}/requests", headers=world["sam"].auth)).json() == {"requests": []}
