"""Document requests in the browser, without JavaScript: staff open a request through the
form, the client uploads a file against an item with a plain multipart form, staff reject
with a reason and accept; the list puts overdue requests first; other clients get 404."""

from __future__ import annotations

import re
import uuid
from datetime import date

import httpx
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.dates import today
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, form_for, parse, table_rows
from tests.fixtures.signin import sign_in
from vault import document_requests as request_service
from vault.db import transaction
from vault.models import AuditEvent, Document
from vault.policy import SYSTEM
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem
from web.services import Services


async def open_request(
    services: Services,
    world: World,
    *,
    title: str,
    due: date,
    client: str = "acme",
    items: tuple[str, ...] = ("Bank statements",),
) -> uuid.UUID:
    async with transaction(services.sessions) as session:
        view = await request_service.create_request(
            session,
            SYSTEM,
            TEST_CONTEXT,
            client_id=world.acme if client == "acme" else world.globex,
            folder_id=world.acme_folder if client == "acme" else world.globex_folder,
            title=title,
            due_date=due,
            items=list(items),
        )
    return view.request.id


async def test_staff_request_client_upload_reject_accept_without_javascript(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    # Step 1: the client (sam looks after acme only, so it is chosen for him).
    new = await http.get("/requests/new")
    assert new.status_code == 200
    assert str(world.acme) in new.text and str(world.globex) not in new.text
    fields = form_for(new.text, "/requests/new")
    assert fields["client"] == str(world.acme)

    # Errors are shown next to their fields, and what was typed is kept.
    bad = await http.post(
        "/requests/new",
        data={
            **fields,
            "folder": str(world.acme_folder),
            "title": "Year end",
            "items": " \n",
            "due_date": today(-1).isoformat(),
            "recurrence": "none",
            "message": "",
        },
    )
    assert bad.status_code == 422
    ids = parse(bad.text).ids
    assert "items-error" in ids and "due_date-error" in ids and "title-error" not in ids
    assert 'value="Year end"' in bad.text

    # Another client's folder is not offered and not accepted.
    foreign = await http.post(
        "/requests/new",
        data={
            **fields,
            "folder": str(world.globex_folder),
            "title": "Year end",
            "items": "Bank statements",
            "due_date": today(7).isoformat(),
            "recurrence": "none",
            "message": "",
        },
    )
    assert foreign.status_code == 422 and "folder-error" in parse(foreign.text).ids

    created = await http.post(
        "/requests/new",
        data={
            **fields,
            "folder": str(world.acme_folder),
            "title": "Year end 2026",
            "message": "Please send these\nby the due date.",
            "due_date": today(14).isoformat(),
            "recurrence": "quarterly",
            "items": "Bank statements\n\n  Payroll   summary  \n",
        },
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    request_id = uuid.UUID(location.split("/")[2].split("?")[0])
    page = await http.get(location)
    assert "The request was sent" in page.text
    assert "Bank statements" in page.text and "Payroll summary" in page.text

    # The client sees it in their list and opens it.
    await sign_in(browser, world["alice"], second_factor=True)
    listing = await browser.get("/requests")
    assert "Year end 2026" in listing.text and f"/requests/{request_id}" in listing.text
    mine = await browser.get(f"/requests/{request_id}")
    assert mine.status_code == 200
    async with transaction(services.sessions) as session:
        items = (
            (
                await session.execute(
                    select(RequestItem)
                    .where(RequestItem.request_id == request_id)
                    .order_by(col(RequestItem.position))
                )
            )
            .scalars()
            .all()
        )
    first, second = items
    upload_action = f"/requests/{request_id}/items/{first.id}/upload"
    upload_form = form_for(mine.text, upload_action)
    assert 'enctype="multipart/form-data"' in mine.text

    # A file posted as a plain multipart form: the token first, then the file.
    sent = await browser.post(
        upload_action,
        data={"csrf_token": upload_form["csrf_token"]},
        files={"file": ("statements.pdf", b"%PDF-1.7 statement bytes", "application/pdf")},
    )
    assert sent.status_code == 303, sent.text
    after = await browser.get(sent.headers["location"])
    assert "Your file was received" in after.text
    assert "Submitted, awaiting review" in after.text
    async with transaction(services.sessions) as session:
        item = await session.get(RequestItem, first.id)
        assert item is not None and item.status == ItemStatus.SUBMITTED
        document = await session.get(Document, item.document_id)
        assert document is not None and document.folder_id == world.acme_folder
        assert document.name == "statements.pdf" and item.version == 1
    content = await browser.get(f"/api/v1/documents/{document.id}/content")
    assert content.content == b"%PDF-1.7 statement bytes"

    # An empty file field is refused on the page, next to that item.
    empty = await browser.post(
        f"/requests/{request_id}/items/{second.id}/upload",
        data={"csrf_token": upload_form["csrf_token"]},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert empty.status_code == 422 and f"upload-error-{second.id}" in parse(empty.text).ids
    # The client cannot answer their own submission.
    assert f"/items/{first.id}/accept" not in after.text
    forged = await browser.post(
        f"/requests/{request_id}/items/{first.id}/accept",
        data={"csrf_token": upload_form["csrf_token"]},
    )
    assert forged.status_code == 403

    # Staff reject: a reason is required, then given.
    review = await http.get(f"/requests/{request_id}")
    reject_action = f"/requests/{request_id}/items/{first.id}/reject"
    token = form_for(review.text, reject_action)["csrf_token"]
    no_reason = await http.post(reject_action, data={"csrf_token": token, "reason": "  "})
    assert no_reason.status_code == 422
    assert f"reject-error-{first.id}" in parse(no_reason.text).ids
    rejected = await http.post(
        reject_action, data={"csrf_token": token, "reason": "These are from 2025."}
    )
    assert rejected.status_code == 303
    seen = await browser.get(f"/requests/{request_id}")
    assert "Rejected" in seen.text and "These are from 2025." in seen.text

    # The client sends another file; staff accept it.
    again = await browser.post(
        upload_action,
        data={"csrf_token": upload_form["csrf_token"]},
        files={"file": ("statements-2026.pdf", b"%PDF-1.7 the right year", "application/pdf")},
    )
    assert again.status_code == 303
    review = await http.get(f"/requests/{request_id}")
    accept_action = f"/requests/{request_id}/items/{first.id}/accept"
    accepted = await http.post(accept_action, data=form_for(review.text, accept_action))
    assert accepted.status_code == 303
    done = await http.get(accepted.headers["location"].split("#")[0])
    assert "The document was accepted" in done.text
    assert "1 of 2 accepted" in done.text
    # An accepted item takes no more files, and shows no upload form.
    assert f"/items/{first.id}/upload" not in (await browser.get(f"/requests/{request_id}")).text

    # Staff close it: it leaves the open list (and, as it repeats, the next one opens).
    close_action = f"/requests/{request_id}/close"
    closed = await http.post(close_action, data=form_for(done.text, close_action))
    assert closed.status_code == 303
    assert f'/requests/{request_id}"' not in (await http.get("/requests")).text
    async with transaction(services.sessions) as session:
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(col(AuditEvent.action).startswith("request."))
                )
            )
            .scalars()
            .all()
        )
        successor = (
            await session.execute(
                select(DocumentRequest).where(DocumentRequest.previous_id == request_id)
            )
        ).scalar_one()
    assert actions.count("request.submitted") == 2
    assert actions.count("request.answered") == 2 and "request.closed" in actions
    assert successor.closed_at is None


async def test_open_requests_list_overdue_first_with_progress(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    later = await open_request(services, world, title="Payroll Q3", due=today(30))
    soon = await open_request(
        services, world, title="VAT return", due=today(2), items=("Invoices", "Receipts")
    )
    overdue = await open_request(services, world, title="Old receipts", due=today(-5))
    await open_request(services, world, title="Globex papers", due=today(-9), client="globex")
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get("/requests")
    assert page.status_code == 200
    rows = table_rows(page.text, "requests-listing")
    order = [re.search(r'href="/requests/([^"]+)"', r).group(1) for r in rows]  # type: ignore[union-attr]
    # Globex's overdue request is not sam's to see; acme's overdue one comes first.
    assert order == [str(overdue), str(soon), str(later)]
    assert "Overdue" in rows[0] and 'class="is-overdue"' in rows[0]
    assert "Overdue" not in rows[1]
    assert "0 of 2 accepted" in rows[1] and "Acme" in rows[1]
    assert 'aria-sort="ascending"' in page.text


async def test_empty_states_for_staff_and_clients(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    staff = await http.get("/requests")
    assert "There are no open document requests." in staff.text
    assert 'href="/requests/new"' in staff.text
    await sign_in(browser, world["alice"], second_factor=True)
    client = await browser.get("/requests")
    assert "Nothing is waiting for you." in client.text
    assert 'href="/requests/new"' not in client.text
    assert (await browser.get("/requests/new")).status_code == 404


async def test_a_client_of_globex_gets_a_not_found_page_for_acme_request(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    request_id = await open_request(services, world, title="Acme only", due=today(3))
    async with transaction(services.sessions) as session:
        item = (
            await session.execute(select(RequestItem).where(RequestItem.request_id == request_id))
        ).scalar_one()
    await sign_in(http, world["bob"], second_factor=True)
    page = await http.get(f"/requests/{request_id}")
    assert page.status_code == 404 and "Not found" in page.text
    assert "Acme only" not in page.text
    assert "Acme only" not in (await http.get("/requests")).text
    token = csrf_of((await http.get("/account")).text)
    # Posting a file against acme's item stores nothing and reads the same.
    sent = await http.post(
        f"/requests/{request_id}/items/{item.id}/upload",
        data={"csrf_token": token},
        files={"file": ("x.pdf", b"nope", "application/pdf")},
    )
    assert sent.status_code == 404
    async with transaction(services.sessions) as session:
        assert (await session.execute(select(Document))).first() is None
    # Nor can globex's staff member answer it.
    await sign_in(http, world["gina"], second_factor=True)
    assert (await http.get(f"/requests/{request_id}")).status_code == 404


async def test_new_request_picks_the_client_first_without_javascript(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    first = await http.get("/requests/new")
    # Several clients: step 1 is a GET form choosing one; no folder list yet.
    assert 'method="get" action="/requests/new"' in first.text
    assert str(world.acme) in first.text and str(world.globex) in first.text
    assert 'name="folder"' not in first.text
    second = await http.get(f"/requests/new?client={world.globex}")
    assert f'value="{world.globex_folder}"' in second.text
    assert f'value="{world.acme_folder}"' not in second.text
    fields = form_for(second.text, "/requests/new")
    created = await http.post(
        "/requests/new",
        data={
            **fields,
            "folder": str(world.globex_folder),
            "title": "Globex payroll",
            "items": "Payslips",
            "due_date": today().isoformat(),
            "recurrence": "monthly",
            "message": "",
        },
    )
    assert created.status_code == 303
    async with transaction(services.sessions) as session:
        request = (await session.execute(select(DocumentRequest))).scalar_one()
    assert request.client_id == world.globex and request.recurrence == "monthly"
