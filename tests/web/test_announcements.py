"""Announcements: staff post and withdraw firm-wide notices through the page, everyone signed
in reads the current ones (newest first, expired and withdrawn ones gone), and the page
links to the firm's shared resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.dates import today
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import csrf_of, form_for, parse
from tests.fixtures.signin import sign_in
from vault import announcements, resources
from vault import folders as folder_service
from vault.db import transaction
from vault.errors import PermissionDeniedError
from vault.models import AuditEvent
from vault.policy import SYSTEM, Principal
from web.services import Services


async def test_staff_post_everyone_reads_staff_withdraw(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get("/announcements")
    assert page.status_code == 200
    assert "There are no announcements right now." in page.text
    fields = form_for(page.text, "/announcements")
    posted = await http.post(
        "/announcements",
        data={
            **fields,
            "title": "Office closed <b>Friday</b>",
            "body": "We are closed on Friday.\r\nUploads still work.",
            "expires": today(10).isoformat(),
        },
    )
    assert posted.status_code == 303 and posted.headers["location"].endswith("done=posted")

    await sign_in(browser, world["alice"], second_factor=True)
    seen = await browser.get("/announcements")
    assert "Office closed &lt;b&gt;Friday&lt;/b&gt;" in seen.text  # text, never markup
    assert "We are closed on Friday.\nUploads still work." in seen.text
    assert "/withdraw" not in seen.text and 'action="/announcements"' not in seen.text
    # A client may not post or withdraw, whatever the form says.
    token = csrf_of(seen.text)
    refused = await browser.post(
        "/announcements", data={"csrf_token": token, "title": "Hi", "body": "there"}
    )
    assert refused.status_code == 404

    await sign_in(browser, world["otto"], second_factor=True)  # auditors read the news too
    assert "Office closed" in (await browser.get("/announcements")).text

    async with transaction(services.sessions) as session:
        (current,) = await announcements.current(session)
    withdraw = f"/announcements/{current.id}/withdraw"
    page = await http.get("/announcements")
    done = await http.post(withdraw, data=form_for(page.text, withdraw))
    assert done.status_code == 303
    assert "Office closed" not in (await browser.get("/announcements")).text
    again = await http.post(withdraw, data=form_for(page.text, withdraw))
    assert again.status_code == 409

    async with transaction(services.sessions) as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(col(AuditEvent.action).startswith("announcement."))
                    # The changes; each page view is an `announcement.listed` read.
                    .where(col(AuditEvent.action) != "announcement.listed")
                    .order_by(col(AuditEvent.seq))
                )
            )
            .scalars()
            .all()
        )
    assert [e.action for e in events] == ["announcement.posted", "announcement.withdrawn"]
    assert events[0].actor_id == str(world["sam"].id)
    assert json.loads(events[0].details)["title"] == "Office closed <b>Friday</b>"
    assert events[1].target_id == str(current.id)


async def test_invalid_announcements_show_errors_next_to_fields(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["ada"], second_factor=True)
    fields = form_for((await http.get("/announcements")).text, "/announcements")
    bad = await http.post(
        "/announcements",
        data={
            **fields,
            "title": "   ",
            "body": "x" * (announcements.MAX_BODY + 1),
            "expires": today(-1).isoformat(),
        },
    )
    assert bad.status_code == 422
    ids = parse(bad.text).ids
    assert {"title-error", "body-error", "expires-error"} <= set(ids)
    assert "at most 5000 characters" in ids["body-error"]
    control = await http.post("/announcements", data={**fields, "title": "Bell\x07", "body": "ok"})
    assert control.status_code == 422 and "title-error" in parse(control.text).ids
    async with transaction(services.sessions) as session:
        assert await announcements.current(session) == []


async def test_current_hides_expired_and_withdrawn_newest_first(
    services: Services, world: World
) -> None:
    now = datetime.now(UTC)
    async with transaction(services.sessions) as session:
        old = await announcements.post(
            session, SYSTEM, TEST_CONTEXT, title="Old", body="b", now=now - timedelta(days=3)
        )
        await announcements.post(
            session,
            SYSTEM,
            TEST_CONTEXT,
            title="Expiring",
            body="b",
            expires_at=now - timedelta(hours=1),
            now=now - timedelta(days=2),
        )
        gone = await announcements.post(
            session, SYSTEM, TEST_CONTEXT, title="Gone", body="b", now=now - timedelta(days=1)
        )
        new = await announcements.post(session, SYSTEM, TEST_CONTEXT, title="New", body="b")
        await announcements.withdraw(session, SYSTEM, TEST_CONTEXT, gone.id)
    async with transaction(services.sessions) as session:
        shown = await announcements.current(session)
        assert [a.id for a in shown] == [new.id, old.id]
        assert [a.id for a in await announcements.current(session, limit=1)] == [new.id]
        # Before it expired, the expiring one was current.
        earlier = await announcements.current(session, now=now - timedelta(hours=2))
        assert "Expiring" in [a.title for a in earlier]
        client = Principal(user_id=world["alice"].id, email="", role=world["alice"].role)
        with pytest.raises(PermissionDeniedError):
            await announcements.post(session, client, TEST_CONTEXT, title="t", body="b")


async def test_the_page_links_to_the_shared_resources(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        firm = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Firm resources")
        await resources.set_shared(session, SYSTEM, TEST_CONTEXT, firm.id, shared=True)
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get("/announcements")
    assert f'href="/clients/{firm.id}"' in page.text and "Firm resources" in page.text
    await sign_in(browser, world["otto"], second_factor=True)
    assert f"/clients/{firm.id}" not in (await browser.get("/announcements")).text
