"""The API of request management: `PATCH /requests/{id}` (wording, checklist, due date in
one transaction), `POST /requests/{id}/reminders` (once per ten minutes) and
`/request-templates` (the firm's, for staff and admin only); another client's staff get 404."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.app import World
from tests.fixtures.dates import today

API = "/api/v1"


async def opened(http: httpx.AsyncClient, world: World) -> dict[str, Any]:
    answer = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={"title": "Year end", "due_date": today(10).isoformat(),
              "folder_id": str(world.acme_folder), "items": ["Bank statements", "Payroll"]},
        headers=world["sam"].auth,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_patch_edits_items_and_due_date_together_or_not_at_all(
    http: httpx.AsyncClient, world: World
) -> None:
    request = await opened(http, world)
    url = f"{API}/requests/{request['id']}"
    first, second = request["items"]
    sam = world["sam"].auth
    changed = await http.patch(
        url,
        json={"title": "Year end 2026", "due_date": today(30).isoformat(),
              "add_items": ["Invoices"], "rename_items": {second["id"]: "Payroll summary"},
              "remove_items": [first["id"]]},
        headers=sam,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["title"] == "Year end 2026" and body["due_date"] == today(30).isoformat()
    assert [i["name"] for i in body["items"]] == ["Payroll summary", "Invoices"]
    # A past due date refuses the whole change, the title included.
    past = await http.patch(
        url, json={"title": "Never", "due_date": today(-1).isoformat()}, headers=sam
    )
    assert past.status_code == 422
    assert (await http.get(url, headers=sam)).json()["title"] == "Year end 2026"
    assert (await http.patch(url, json={"title": None}, headers=sam)).status_code == 422
    unknown = await http.patch(url, json={"remove_items": [first["id"]]}, headers=sam)
    assert unknown.status_code == 404
    # Another client's staff and the client's own people may not edit it.
    assert (
        await http.patch(url, json={"title": "x"}, headers=world["gina"].auth)
    ).status_code == 404
    assert (
        await http.patch(url, json={"title": "x"}, headers=world["alice"].auth)
    ).status_code == 403


async def test_a_second_reminder_within_ten_minutes_is_refused(
    http: httpx.AsyncClient, world: World
) -> None:
    request = await opened(http, world)
    url = f"{API}/requests/{request['id']}/reminders"
    first = await http.post(url, headers=world["sam"].auth)
    assert first.status_code == 202, first.text
    again = await http.post(url, headers=world["sam"].auth)
    assert again.status_code == 409
    assert (await http.post(url, headers=world["gina"].auth)).status_code == 404
    assert (await http.post(url, headers=world["alice"].auth)).status_code == 403


async def test_templates_belong_to_the_firm(http: httpx.AsyncClient, world: World) -> None:
    url = f"{API}/request-templates"
    made = await http.post(
        url,
        json={"name": "Year-end tax pack", "title": "Year end", "items": ["Bank statements"],
              "due_in_days": 30},
        headers=world["sam"].auth,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    template = made.json()
    # Globex's staff see and change it too: it is the firm's, not a client's.
    listed = await http.get(url, headers=world["gina"].auth)
    assert [t["name"] for t in listed.json()["templates"]] == ["Year-end tax pack"]
    same = await http.post(
        url, json={"name": "year-end TAX pack", "title": "x", "items": ["x"]},
        headers=world["gina"].auth,
    )  # fmt: skip
    assert same.status_code == 409
    changed = await http.patch(
        f"{url}/{template['id']}", json={"due_in_days": None, "items": ["A", "B"]},
        headers=world["gina"].auth,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["due_in_days"] is None and changed.json()["items"] == ["A", "B"]
    assert changed.json()["title"] == "Year end"
    for who in ("alice", "otto"):
        assert (await http.get(url, headers=world[who].auth)).status_code == 404
        gone = await http.delete(f"{url}/{template['id']}", headers=world[who].auth)
        assert gone.status_code == 404
    assert (
        await http.delete(f"{url}/{template['id']}", headers=world["ada"].auth)
    ).status_code == 204
    assert (await http.get(url, headers=world["sam"].auth)).json()["templates"] == []
