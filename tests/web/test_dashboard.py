"""The home page as a dashboard: what changed since the last visit, pending document requests,
announcements and the client tiles."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlmodel import select
from starlette.types import ASGIApp

from tests.fixtures.app import TEST_CONTEXT, Person, World
from tests.fixtures.signin import sign_in
from vault import announcements, visits
from vault import document_requests as request_service
from vault.db import transaction
from vault.models import User
from vault.policy import SYSTEM
from web.services import Services

API = "/api/v1"


@pytest.fixture
async def browser(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, with a cookie jar of its own."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def flat(html: str) -> str:
    return " ".join(html.split())


def news_section(html: str) -> str:
    found = re.search(r'<section[^>]*id="news".*?</section>', html, re.S)
    assert found is not None, html
    return found.group(0)


async def upload(http: httpx.AsyncClient, person: Person, folder: uuid.UUID, name: str) -> str:
    response = await http.put(
        f"{API}/folders/{folder}/files/{name}", content=b"some bytes", headers=person.auth
    )
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def set_visits(
    services: Services,
    person: Person,
    *,
    last: datetime | None,
    previous: datetime | None,
) -> None:
    async with transaction(services.sessions) as session:
        user = (await session.execute(select(User).where(User.id == person.id))).scalar_one()
        user.last_seen_at = last
        user.previous_seen_at = previous
        session.add(user)


async def tick() -> None:
    # Audit timestamps have millisecond precision: keep "before" and "after" apart.
    await asyncio.sleep(0.02)


# Visits ----------------------------------------------------------------------------------------


async def test_a_visit_starts_after_thirty_quiet_minutes(services: Services, world: World) -> None:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["alice"].id)
        assert user is not None
        first = await visits.record_visit(session, user, now=t0)
        assert first == visits.Visit(t0 - timedelta(days=14), first=True)
        # Until a second visit, the window is the fourteen days before each load.
        same = await visits.record_visit(session, user, now=t0 + timedelta(minutes=20))
        assert same == visits.Visit(t0 + timedelta(minutes=20) - timedelta(days=14), first=True)
        # Twenty minutes later is still the same visit: the gap counts from the last load.
        still = await visits.record_visit(session, user, now=t0 + timedelta(minutes=45))
        assert still.first
        later = t0 + timedelta(minutes=45 + 31)
        second = await visits.record_visit(session, user, now=later)
        assert second == visits.Visit(t0 + timedelta(minutes=45), first=False)
        reload = await visits.record_visit(session, user, now=later + timedelta(minutes=5))
        assert reload.since == t0 + timedelta(minutes=45)
        third = await visits.record_visit(session, user, now=later + timedelta(hours=2))
        assert third.since == later + timedelta(minutes=5)
    async with transaction(services.sessions) as session:
        stored = await session.get(User, world["alice"].id)
        assert stored is not None and stored.last_seen_at is not None
        assert stored.last_seen_at.replace(tzinfo=UTC) == later + timedelta(hours=2)


async def test_the_first_visit_shows_the_last_fourteen_days_and_is_remembered(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await upload(http, world["sam"], world.acme_folder, "welcome-pack.pdf")
    await sign_in(http, world["alice"], second_factor=True)
    home = await http.get("/")
    news = flat(news_section(home.text))
    assert "first visit" in news and "14 days" in news
    assert "welcome-pack.pdf" in news and "New document" in news
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["alice"].id)
        assert user is not None and user.last_seen_at is not None
        assert user.previous_seen_at is None


async def test_only_changes_after_the_previous_visit_are_new(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    sam, alice = world["sam"], world["alice"]
    old = await upload(http, sam, world.acme_folder, "seen-already.pdf")
    await tick()
    previous = datetime.now(UTC)
    await tick()
    new = await upload(http, sam, world.acme_folder, "fresh-report.pdf")
    await upload(http, sam, world.acme_folder, "seen-already.pdf")  # its second version
    # Alice's current visit began after one that ended at `previous`.
    await set_visits(services, alice, last=datetime.now(UTC), previous=previous)
    await sign_in(http, alice, second_factor=True)
    news = news_section((await http.get("/")).text)
    assert f'href="/documents/{new}"' in news
    assert "fresh-report.pdf" in news and "first visit" not in news
    # The old document is there only for its new version, not for its creation.
    assert news.count(f'href="/documents/{old}"') == 1
    assert "New version 2" in news
    assert news.count("New document") == 1
    # Newest first.
    assert news.index("seen-already.pdf") < news.index("fresh-report.pdf")
    assert "By sam@example.test" in flat(news)

    # A visit after one that saw them: what was new then is not new any more.
    await tick()
    seen = datetime.now(UTC)
    await set_visits(services, alice, last=seen, previous=seen)
    again = news_section((await http.get("/")).text)
    assert "fresh-report.pdf" not in again
    assert "Nothing has changed since your last visit" in flat(again)


async def test_changes_in_another_client_never_appear(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    await upload(http, world["gina"], world.globex_folder, "globex-secret-plan.pdf")
    await upload(http, world["sam"], world.acme_folder, "acme-invoice.pdf")
    await sign_in(http, world["alice"], second_factor=True)
    home = (await http.get("/")).text
    assert "acme-invoice.pdf" in home
    assert "globex-secret-plan.pdf" not in home and "Globex" not in home
    await sign_in(browser, world["bob"], second_factor=True)
    theirs = (await browser.get("/")).text
    assert "globex-secret-plan.pdf" in theirs and "acme-invoice.pdf" not in theirs


async def test_own_changes_are_not_news_and_trashed_documents_link_to_their_folder(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    alice, sam = world["alice"], world["sam"]
    mine = await upload(http, alice, world.acme_folder, "my-receipts.pdf")
    await sign_in(http, alice, second_factor=True)
    assert "my-receipts.pdf" not in news_section((await http.get("/")).text)
    trashed = await http.delete(f"{API}/documents/{mine}", headers=sam.auth)
    assert trashed.status_code == 204, trashed.text
    news = news_section((await http.get("/")).text)
    assert "Moved to the trash" in news and "my-receipts.pdf" in news
    assert f'href="/folders/{world.acme_folder}"' in news
    assert f'href="/documents/{mine}"' not in news
    await sign_in(browser, sam, second_factor=True)
    theirs = news_section((await browser.get("/")).text)
    # Sam hears of Alice's upload, but the document is in the trash now.
    assert "New document" in theirs and "Now in the trash" in theirs
    assert "Moved to the trash" not in theirs, "his own change"


async def test_many_changes_end_with_how_many_more(http: httpx.AsyncClient, world: World) -> None:
    for n in range(22):
        await upload(http, world["sam"], world.acme_folder, f"statement-{n:02d}.pdf")
    await sign_in(http, world["alice"], second_factor=True)
    news = flat(news_section((await http.get("/")).text))
    assert news.count('class="row change"') == 20
    assert "And 2 more changes" in news
    assert "statement-21.pdf" in news and "statement-00.pdf" not in news


async def test_auditors_see_no_documents_but_the_way_to_the_audit_log(
    http: httpx.AsyncClient, world: World
) -> None:
    await upload(http, world["sam"], world.acme_folder, "ledger.xlsx")
    await sign_in(http, world["otto"], second_factor=True)
    home = await http.get("/")
    assert home.status_code == 200
    assert "ledger.xlsx" not in home.text and 'id="news"' not in home.text
    assert 'href="/api/v1/audit"' in home.text
    assert 'id="pending-requests"' not in home.text


# Requests, announcements, tiles ------------------------------------------------------------------


async def open_request(
    services: Services, client: uuid.UUID, folder: uuid.UUID, title: str, due: date
) -> uuid.UUID:
    async with transaction(services.sessions) as session:
        view = await request_service.create_request(
            session,
            SYSTEM,
            TEST_CONTEXT,
            client_id=client,
            folder_id=folder,
            title=title,
            due_date=due,
            items=["Bank statements", "Payslips"],
        )
        return view.request.id


async def test_pending_requests_overdue_first_and_only_ones_own(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services, world: World
) -> None:
    today = datetime.now(UTC).date()
    later = await open_request(
        services, world.acme, world.acme_folder, "Year-end accounts", today + timedelta(days=20)
    )
    late = await open_request(
        services, world.acme, world.acme_folder, "Quarterly VAT", today - timedelta(days=3)
    )
    await open_request(
        services, world.globex, world.globex_folder, "Globex payroll", today + timedelta(days=2)
    )
    await sign_in(http, world["alice"], second_factor=True)
    home = (await http.get("/")).text
    section = re.search(r'id="pending-requests".*?</section>', home, re.S)
    assert section is not None
    text = flat(section.group(0))
    assert text.index("Quarterly VAT") < text.index("Year-end accounts")
    assert f'href="/requests/{late}"' in text and f'href="/requests/{later}"' in text
    # Overdue is said in words, not only by colour.
    overdue_row = text[text.index("Quarterly VAT") : text.index("Year-end accounts")]
    assert "Overdue" in overdue_row and "Was due" in overdue_row
    assert "Overdue" not in text[text.index("Year-end accounts") :]
    assert "2 of 2 documents still to send" in text
    assert "Globex payroll" not in home

    await sign_in(browser, world["ada"], second_factor=True)
    admin = flat((await browser.get("/")).text)
    assert "3 open requests. 1 of them is overdue." in admin
    assert 'href="/requests"' in admin and "Globex payroll" in admin


async def test_no_requests_says_what_to_do(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    client_view = flat((await http.get("/")).text)
    assert "Nobody is waiting for documents from you" in client_view
    assert 'href="/requests/new"' not in client_view
    await sign_in(browser, world["sam"], second_factor=True)
    staff_view = flat((await browser.get("/")).text)
    assert "No document requests are open" in staff_view
    assert 'href="/requests/new"' in staff_view


async def test_current_announcements_appear_and_withdrawn_ones_do_not(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    async with transaction(services.sessions) as session:
        await announcements.post(
            session,
            SYSTEM,
            TEST_CONTEXT,
            title="Office closed on Friday",
            body="Line one\nLine two",
        )
        gone = await announcements.post(
            session, SYSTEM, TEST_CONTEXT, title="Old news", body="Not any more"
        )
        await announcements.withdraw(session, SYSTEM, TEST_CONTEXT, gone.id)
    await sign_in(http, world["bob"], second_factor=True)
    home = (await http.get("/")).text
    assert "Office closed on Friday" in home and "Line one\nLine two" in home
    assert "Old news" not in home


async def test_client_tiles_link_to_the_client(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    home = (await http.get("/")).text
    assert f'href="/clients/{world.acme}"' in home
    assert f'href="/clients/{world.globex}"' not in home
