"""The console's domain rules, below the pages: archived clients are read-only in the one
policy, the People actions refuse what they must, and the report figures are right."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import TEST_CONTEXT, World
from vault import accounts, reports, retention
from vault import document_requests as request_service
from vault.accounts import people
from vault.db import transaction
from vault.errors import ConflictError, NotFoundError
from vault.models import Role, User, Version
from vault.policy import SYSTEM, Permission, Principal, allows
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem
from web.services import Services


def test_an_archived_client_is_readable_and_changed_by_nobody() -> None:
    client = uuid.uuid4()
    staff = Principal(
        user_id=uuid.uuid4(),
        email="s@example.test",
        role=Role.STAFF,
        client_ids=frozenset({client}),
        archived_client_ids=frozenset({client}),
    )
    assert allows(staff, Permission.VIEW, client) and allows(staff, Permission.DOWNLOAD, client)
    for write in (Permission.UPLOAD, Permission.CREATE_FOLDER, Permission.DELETE):
        assert not allows(staff, write, client)
        admin = Principal(
            user_id=uuid.uuid4(),
            email="a@example.test",
            role=Role.ADMIN,
            archived_client_ids=frozenset({client}),
        )
        assert not allows(admin, write, client)


def test_percentiles_interpolate_between_ranks() -> None:
    assert reports.percentile([], 0.5) is None
    assert reports.percentile([4.0, 2.0, 10.0], 0.5) == 4.0
    assert reports.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert reports.percentile([2.0, 4.0, 10.0], 0.9) == pytest.approx(8.8)


async def as_principal(services: Services, world: World, name: str) -> Principal:
    async with transaction(services.sessions) as session:
        user = await session.get(User, world[name].id)
        assert user is not None
        return await accounts.principal_for(session, user)


async def test_staff_reach_only_users_wholly_of_their_own_clients(
    services: Services, world: World
) -> None:
    sam = await as_principal(services, world, "sam")
    async with transaction(services.sessions) as session:
        # Alice also joins Globex, which Sam does not look after: she is out of his reach.
        alice = await session.get(User, world["alice"].id)
        assert alice is not None
        await accounts.grant_access(session, TEST_CONTEXT, alice, world.globex)
    ada = await as_principal(services, world, "ada")
    async with transaction(services.sessions) as session:
        assert await people.list_people(session, sam) == []
        with pytest.raises(NotFoundError):
            await people.set_active(session, sam, TEST_CONTEXT, world["alice"].id, active=False)
        with pytest.raises(ConflictError):
            await people.set_active(session, ada, TEST_CONTEXT, world["ada"].id, active=False)
        with pytest.raises(ConflictError):
            await people.set_role(session, ada, TEST_CONTEXT, world["ada"].id, Role.STAFF)


async def test_turnaround_counts_only_fully_accepted_requests(
    services: Services, world: World
) -> None:
    opened = datetime.now(UTC) - timedelta(days=20)
    today = datetime.now(UTC).date()
    async with transaction(services.sessions) as session:
        for title, days in (("A", 2), ("B", 4), ("C", 10), ("Open", None)):
            view = await request_service.create_request(
                session,
                SYSTEM,
                TEST_CONTEXT,
                client_id=world.acme,
                folder_id=world.acme_folder,
                title=title,
                due_date=today - timedelta(days=3),
                items=["Statements", "Payslips"],
            )
            row = await session.get(DocumentRequest, view.request.id)
            assert row is not None
            row.created_at = opened
            if days is not None:
                # Closed once everything was in: not overdue any more.
                row.closed_at = opened + timedelta(days=days)
            items = (
                await session.execute(select(RequestItem).where(RequestItem.request_id == row.id))
            ).scalars()
            for index, item in enumerate(items):
                if days is not None:
                    item.status = ItemStatus.ACCEPTED
                    # The request is answered when its last item is accepted.
                    item.answered_at = opened + timedelta(days=days if index else days / 2)
    gina = await as_principal(services, world, "gina")
    async with transaction(services.sessions) as session:
        found = await reports.report(session, SYSTEM, world.acme, weeks=4, today=today)
        assert found.answered == 3
        assert found.median_days == pytest.approx(4.0)
        assert found.p90_days == pytest.approx(8.8)
        assert [(o.title, o.days) for o in found.overdue] == [("Open", 3)]
        assert len(found.weeks) == 4
        with pytest.raises(NotFoundError):  # Globex's staff see nothing of Acme
            await reports.report(session, gina, world.acme)


async def test_downloads_count_whole_files_not_their_pieces_or_previews(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    data = bytes(range(256)) * 40
    ids = []
    for name in ("one.pdf", "two.pdf"):
        response = await http.put(
            f"/api/v1/folders/{world.acme_folder}/files/{name}",
            content=data,
            headers=world["sam"].auth,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["document_id"])
    auth = world["alice"].auth
    content = [f"/api/v1/documents/{i}/content" for i in ids]
    answers = [
        await http.get(content[0], headers=auth),  # a download: 1
        # One download fetched in two pieces: 1.
        await http.get(content[1], headers={**auth, "Range": "bytes=0-4999"}),
        await http.get(content[1], headers={**auth, "Range": "bytes=5000-"}),
        # The document page's preview: none.
        await http.get(content[0], params={"disposition": "inline"}, headers=auth),
    ]
    assert [a.status_code for a in answers] == [200, 206, 206, 200]
    shared = await http.post(
        f"/api/v1/documents/{ids[0]}/links",
        json={"expires_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
        headers=world["sam"].auth,
    )
    assert shared.status_code == 201, shared.text
    path = shared.json()["url"].removeprefix("http://127.0.0.1:8000")
    assert (await http.get(path)).status_code == 200
    assert (await http.get(f"{path}/content")).content == data  # through the link: 1
    async with transaction(services.sessions) as session:
        found = await reports.report(session, SYSTEM, world.acme, weeks=1)
    assert [week.downloads for week in found.weeks] == [3]
    assert [week.uploads for week in found.weeks] == [2]


def test_a_download_is_a_whole_file_or_the_first_piece_of_one() -> None:
    assert reports.is_download('{"range": null, "bytes": 10}')
    assert reports.is_download('{"range": "0-99", "bytes": 100}')
    assert not reports.is_download('{"range": "100-199", "bytes": 100}')
    assert not reports.is_download('{"range": null, "disposition": "inline"}')
    assert reports.is_download('{"via": "zip", "range": null}')


async def test_storage_history_keeps_shredded_versions_until_the_week_they_went(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    now = datetime.now(UTC)
    for content in (b"1" * 100, b"2" * 50):
        response = await http.put(
            f"/api/v1/folders/{world.acme_folder}/files/s.txt",
            content=content,
            headers=world["sam"].auth,
        )
        assert response.status_code in (200, 201), response.text
    async with transaction(services.sessions) as session:
        # Added two weeks ago and last week: the first and second weeks of the report.
        for version in (await session.execute(select(Version))).scalars():
            version.created_at = now - timedelta(weeks=3 - version.number)
        await retention.set_policy(
            session,
            SYSTEM,
            TEST_CONTEXT,
            world.acme,
            folder_id=None,
            rules=retention.Rules(keep_versions=1),
        )

    async def stored() -> list[int]:
        async with transaction(services.sessions) as session:
            found = await reports.report(session, SYSTEM, world.acme, weeks=3)
        return [week.stored for week in found.weeks]

    assert await stored() == [100, 150, 150]
    run = await retention.apply(services.sessions, services.store)
    assert [d.version for d in run.deleted] == [1]
    # Shredded this week: gone from this week's figure, still in the weeks before.
    assert await stored() == [100, 150, 50]
