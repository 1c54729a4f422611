"""Staff manage document requests in the browser, without JavaScript: the list's Open /
Closed / All tabs and its client and due filters, editing a request's wording and
checklist, moving its due date, a reminder sent by hand that emails the client once however
often it is clicked, and the firm's templates used for two clients. Other clients' staff get
404 everywhere."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.dates import today
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, form_for, parse, table_rows
from tests.fixtures.reminders import html, tick
from tests.fixtures.request_management import open_request
from tests.fixtures.signin import sign_in
from tests.fixtures.smtp import SMTPSink
from vault.db import transaction
from vault.models import AuditEvent
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem, RequestTemplate
from web.services import Services

REMINDER = "Reminder: documents requested are"


def listed(page: str) -> list[str]:
    rows = table_rows(page, "requests-listing") if "requests-listing" in page else []
    return [re.search(r'href="/requests/([^"]+)"', r).group(1) for r in rows]  # type: ignore[union-attr]


def counts(page: str) -> dict[str, int]:
    found = re.findall(
        r'href="/requests\?state=(\w+)[^"]*"[^>]*>[^<]*<span class="tabs__count">(\d+)', page
    )
    return {state: int(n) for state, n in found}


async def events(services: Services, action: str) -> list[dict[str, object]]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return [json.loads(e.details) for e in rows.scalars().all()]


async def items_of(services: Services, request_id: uuid.UUID) -> list[RequestItem]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(RequestItem)
            .where(RequestItem.request_id == request_id)
            .order_by(col(RequestItem.position))
        )
        return list(rows.scalars().all())


async def test_the_list_filters_by_state_client_and_due_date_with_counts(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    late = await open_request(services, world, title="Old receipts", due=today(-3))
    week = await open_request(services, world, title="VAT return", due=today(4))
    later = await open_request(services, world, title="Payroll Q3", due=today(40))
    globex = await open_request(
        services, world, title="Globex papers", due=today(2), client="globex"
    )
    done = await open_request(services, world, title="Last year", due=today(10))
    await sign_in(http, world["ada"], second_factor=True)
    close = await http.get(f"/requests/{done}")
    assert (
        await http.post(f"/requests/{done}/close", data={"csrf_token": csrf_of(close.text)})
    ).status_code == 303

    page = await http.get("/requests")
    assert listed(page.text) == [str(late), str(globex), str(week), str(later)]
    assert counts(page.text) == {"open": 4, "closed": 1, "all": 5}
    assert 'aria-current="page">Open' in page.text
    closed = await http.get("/requests?state=closed")
    assert (
        listed(closed.text) == [str(done)]
        and "Closed" in table_rows(closed.text, "requests-listing")[0]
    )
    assert listed((await http.get("/requests?state=all")).text)[-1] == str(done)

    only_acme = await http.get(f"/requests?client={world.acme}")
    assert str(globex) not in listed(only_acme.text)
    assert counts(only_acme.text) == {"open": 3, "closed": 1, "all": 4}
    # The tabs keep the filters.
    assert f"/requests?state=closed&amp;client={world.acme}" in only_acme.text
    assert listed((await http.get("/requests?due=overdue")).text) == [str(late)]
    assert listed((await http.get("/requests?due=week")).text) == [str(globex), str(week)]
    assert listed((await http.get(f"/requests?due=week&client={world.acme}")).text) == [str(week)]
    assert listed((await http.get("/requests?due=later")).text) == [str(later)]
    nothing = await http.get(f"/requests?due=overdue&client={world.globex}")
    assert "No request matches these filters." in nothing.text
    # Unknown values are no filter.
    assert len(listed((await http.get("/requests?state=bogus&due=soonish")).text)) == 4

    # Staff see only their clients, are offered only those, and another client is a 404.
    await sign_in(http, world["sam"], second_factor=True)
    mine = await http.get("/requests?state=all")
    assert str(globex) not in listed(mine.text) and str(world.globex) not in mine.text
    assert (await http.get(f"/requests?client={world.globex}")).status_code == 404
    assert (await http.get("/requests?client=not-an-id")).status_code == 404


async def test_staff_edit_the_wording_and_checklist_of_an_open_request(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id = await open_request(
        services, world, title="Year end", due=today(9), items=("Bank statements", "Payroll")
    )
    first, second = await items_of(services, request_id)
    async with transaction(services.sessions) as session:
        answered = await session.get(RequestItem, second.id)
        assert answered is not None
        answered.status = ItemStatus.REJECTED
        answered.reason = "blurred"
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/requests/{request_id}")
    assert f'href="/requests/{request_id}/edit"' in page.text
    edit = await http.get(f"/requests/{request_id}/edit")
    assert edit.status_code == 200
    token = csrf_of(edit.text)
    # Only the item with nothing attached and no answer offers "Remove".
    removes = [f for f in parse(edit.text).forms if f.fields.get("part") == "remove"]
    assert [f.fields["item"] for f in removes] == [str(first.id)]

    async def send(**fields: str) -> httpx.Response:
        return await http.post(f"/requests/{request_id}/edit", data={"csrf_token": token, **fields})

    saved = await send(part="details", title="  Year end   2026 ", message="Before March, please.")
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    assert (
        await send(part="rename", item=str(second.id), name="Payroll summary")
    ).status_code == 303
    assert (await send(part="add", items="Invoices\n\n  Receipts ")).status_code == 303
    assert (await send(part="remove", item=str(first.id))).status_code == 303
    refused = await send(part="remove", item=str(second.id))
    assert refused.status_code == 422
    assert "The client has already sent a file for this document" in refused.text
    empty = await send(part="details", title=" ", message="")
    assert empty.status_code == 422 and 'aria-invalid="true"' in empty.text
    # An item of another request is not found.
    other = await open_request(services, world, title="Other", due=today(9))
    (foreign,) = await items_of(services, other)
    assert (await send(part="rename", item=str(foreign.id), name="Mine")).status_code == 404

    async with transaction(services.sessions) as session:
        request = await session.get(DocumentRequest, request_id)
        assert request is not None
        assert (request.title, request.message) == ("Year end 2026", "Before March, please.")
    assert [(i.name, i.status) for i in await items_of(services, request_id)] == [
        ("Payroll summary", "rejected"),
        ("Invoices", "requested"),
        ("Receipts", "requested"),
    ]
    edits = await events(services, "request.edited")
    assert [e["fields"] for e in edits] == [["title", "message"], [], [], []]
    assert edits[1]["renamed"] == [["Payroll", "Payroll summary"]]
    assert edits[2]["added"] == ["Invoices", "Receipts"]
    assert edits[3]["removed"] == ["Bank statements"]

    # Another client's staff and the client's own people are refused.
    await sign_in(http, world["gina"], second_factor=True)
    assert (await http.get(f"/requests/{request_id}/edit")).status_code == 404
    token = csrf_of((await http.get("/account")).text)
    assert (await send(part="details", title="Mine", message="")).status_code == 404


async def test_the_due_date_moves_forward_and_reminders_start_over(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id = await open_request(services, world, title="Year end", due=today(-2))
    async with transaction(services.sessions) as session:
        request = await session.get(DocumentRequest, request_id)
        assert request is not None
        request.reminded_overdue_at = datetime.now(UTC)
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/requests/{request_id}")
    token = csrf_of(page.text)
    past = await http.post(
        f"/requests/{request_id}/due", data={"csrf_token": token, "due_date": today(-1).isoformat()}
    )
    assert past.status_code == 422 and "due_date-error" in parse(past.text).ids
    moved = await http.post(
        f"/requests/{request_id}/due", data={"csrf_token": token, "due_date": today(21).isoformat()}
    )
    assert moved.status_code == 303
    shown = await http.get(moved.headers["location"])
    assert "The due date was changed." in shown.text and "Overdue" not in shown.text
    async with transaction(services.sessions) as session:
        request = await session.get(DocumentRequest, request_id)
        assert request is not None
        assert request.due_date == today(21) and request.reminded_overdue_at is None
    [changed] = await events(services, "request.due_changed")
    assert changed["previous_due_date"] == today(-2).isoformat()
    assert changed["due_date"] == today(21).isoformat()
    await sign_in(http, world["gina"], second_factor=True)
    token = csrf_of((await http.get("/account")).text)
    foreign = await http.post(
        f"/requests/{request_id}/due", data={"csrf_token": token, "due_date": today(30).isoformat()}
    )
    assert foreign.status_code == 404


async def test_a_reminder_sent_by_hand_emails_the_client_once_however_often_clicked(
    http: httpx.AsyncClient, world: World, services: Services, smtp_sink: SMTPSink
) -> None:
    request_id = await open_request(services, world, title="Year end", due=today(20))
    await tick(services, smtp_sink, datetime.now(UTC))  # the "requested" email
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/requests/{request_id}")
    fields = form_for(page.text, f"/requests/{request_id}/remind")
    for _click in range(2):
        sent = await http.post(f"/requests/{request_id}/remind", data=fields)
        assert sent.status_code == 303 and sent.headers["location"].endswith("?done=reminded")
    assert "A reminder is on its way" in (await http.get(sent.headers["location"])).text
    now = datetime.now(UTC)
    await tick(services, smtp_sink, now)
    window = services.settings.notify.batch_window_seconds
    await tick(services, smtp_sink, now + timedelta(seconds=window + 1))
    alice = world["alice"].email
    reminders = [m for m in smtp_sink.to(alice) if REMINDER in html(m)]
    assert len(reminders) == 1 and "Year end" in html(reminders[0])
    assert [m for m in smtp_sink.to(world["sam"].email) if REMINDER in html(m)] == []
    [event] = await events(services, "request.reminder")
    assert event["manual"] is True and event["stage"] == "due_soon"
    # Another client's staff cannot remind acme's people.
    await sign_in(http, world["gina"], second_factor=True)
    token = csrf_of((await http.get("/account")).text)
    assert (
        await http.post(f"/requests/{request_id}/remind", data={"csrf_token": token})
    ).status_code == 404


async def test_templates_are_saved_from_the_form_and_used_for_two_clients(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    new = await http.get("/requests/new")
    fields = form_for(new.text, "/requests/new")
    form = {
        **fields,
        "folder": str(world.acme_folder),
        "title": "Year-end tax pack 2026",
        "message": "All of it by the end of January.",
        "due_date": today(30).isoformat(),
        "recurrence": "none",
        "items": "Bank statements\nPayroll summary\nInvoices",
        "template_name": "Year-end tax pack",
    }
    saved = await http.post("/requests/new", data={**form, "action": "save_template"})
    assert saved.status_code == 200, saved.text
    assert "Saved as the template" in saved.text and 'value="Year-end tax pack 2026"' in saved.text
    again = await http.post(
        "/requests/new",
        data={**form, "action": "save_template", "template_name": "YEAR-END tax PACK"},
    )
    assert again.status_code == 422 and "template_name-error" in parse(again.text).ids
    async with transaction(services.sessions) as session:
        template = (await session.execute(select(RequestTemplate))).scalar_one()
    assert template.item_names == ["Bank statements", "Payroll summary", "Invoices"]
    assert template.due_in_days == 30
    listing = await http.get("/requests/templates")
    assert "Year-end tax pack" in listing.text and "30 days after starting" in listing.text

    # Globex's staff start a request for their own client from sam's template.
    await sign_in(browser, world["gina"], second_factor=True)
    started = await browser.get(f"/requests/new?template={template.id}")
    assert "Year-end tax pack 2026" in started.text and "Payroll summary" in started.text
    assert f'value="{today(30).isoformat()}"' in started.text
    # The textareas (items, message) are filled from the template too; the form parser reads
    # inputs only, so they are sent as shown.
    assert "All of it by the end of January.</textarea>" in started.text
    typed = {"items": "Bank statements\nPayroll summary\nInvoices", "recurrence": "none"}
    sent = await browser.post(
        "/requests/new",
        data={
            **form_for(started.text, "/requests/new"),
            **typed,
            "folder": str(world.globex_folder),
        },
    )
    assert sent.status_code == 303, sent.text
    # And sam for acme, from the same template.
    started = await http.get(f"/requests/new?template={template.id}")
    sent = await http.post(
        "/requests/new",
        data={**form_for(started.text, "/requests/new"), **typed, "folder": str(world.acme_folder)},
    )
    assert sent.status_code == 303, sent.text
    async with transaction(services.sessions) as session:
        made = (await session.execute(select(DocumentRequest))).scalars().all()
    assert sorted(r.client_id for r in made) == sorted([world.acme, world.globex])
    assert {r.title for r in made} == {"Year-end tax pack 2026"}

    # Changing and deleting it on its page; clients know nothing of templates.
    edit = await http.get(f"/requests/templates/{template.id}")
    changed = await http.post(
        f"/requests/templates/{template.id}",
        data={**form_for(edit.text, f"/requests/templates/{template.id}"), "due_in_days": "abc"},
    )
    assert changed.status_code == 422 and "due_in_days-error" in parse(changed.text).ids
    deleted = await http.post(
        f"/requests/templates/{template.id}/delete", data={"csrf_token": csrf_of(edit.text)}
    )
    assert deleted.status_code == 303
    assert "There are no templates yet." in (await http.get(deleted.headers["location"])).text
    assert [e["name"] for e in await events(services, "request.template_deleted")] == [
        "Year-end tax pack"
    ]
    await sign_in(http, world["alice"], second_factor=True)
    assert (await http.get("/requests/templates")).status_code == 404
    assert (await http.get(f"/requests/new?template={template.id}")).status_code == 404
