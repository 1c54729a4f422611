"""Quotas are enforced before an upload's bytes are stored: the one-shot PUT by its
Content-Length (or as it streams), tus creation by its Upload-Length, the plain form as it
streams; a refusal leaves no version and no object behind."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Engine, event
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.multipart import post_form
from tests.fixtures.pages import account_csrf
from tests.fixtures.quotas import put, set_quota
from tests.fixtures.signin import sign_in
from tests.fixtures.statements import statements_sent
from tests.fixtures.tus import TUS, metadata
from vault import accounts, audit, publishing, quarantine, quotas
from vault.db import transaction
from vault.errors import QuotaExceededError
from vault.models import AuditEvent, User, Version
from vault.policy import SYSTEM
from vault.quarantine_tables import HeldVersion
from vault.uploads import Upload
from web.services import Services
from web.settings import ScanSettings, Settings


async def stored_state(services: Services) -> tuple[int, set[str]]:
    async with transaction(services.sessions) as session:
        versions = len((await session.execute(select(Version))).scalars().all())
    return versions, {obj.key async for obj in services.store.list("objects/")}


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_one_shot_over_quota_is_refused_by_its_content_length(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    assert (await put(http, world, "a.bin", b"a" * 600)).status_code == 201
    before = await stored_state(services)
    response = await put(http, world, "b.bin", b"b" * 500)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["title"], body["quota"], body["used"], body["requested"]) == (
        "Quota exceeded",
        1000,
        600,
        500,
    )
    assert "1000" in body["detail"]
    assert await stored_state(services) == before
    assert (await put(http, world, "c.bin", b"c" * 400)).status_code == 201


async def test_one_shot_without_length_is_stopped_as_it_streams(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    assert (await put(http, world, "a.bin", b"a" * 600)).status_code == 201
    before = await stored_state(services)
    response = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/b.bin",
        content=chunks(b"b" * 2000),
        headers=world["sam"].auth,
    )
    assert response.status_code == 413, response.text
    assert (response.json()["quota"], response.json()["used"]) == (1000, 600)
    assert await stored_state(services) == before
    async with transaction(services.sessions) as session:
        assert await quotas.reserved_bytes(session, world.acme) == 0


async def test_tus_creation_over_quota_is_refused_and_open_uploads_reserve(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    assert (await put(http, world, "a.bin", b"a" * 600)).status_code == 201

    async def create(length: int) -> httpx.Response:
        return await http.post(
            "/api/v1/uploads",
            headers={
                **world["sam"].auth,
                **TUS,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(filename="t.bin", folder_id=str(world.acme_folder)),
            },
        )

    refused = await create(401)
    assert refused.status_code == 413
    assert (refused.json()["quota"], refused.json()["used"], refused.json()["requested"]) == (
        1000,
        600,
        401,
    )
    assert (await create(300)).status_code == 201
    # The open upload holds its 300 bytes: a second one no longer fits.
    second = await create(101)
    assert second.status_code == 413
    assert second.json()["used"] == 900
    async with transaction(services.sessions) as session:
        assert len((await session.execute(select(Upload))).scalars().all()) == 1


async def test_form_upload_over_quota_is_stopped_as_it_streams(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    assert (await put(http, world, "a.bin", b"a" * 600)).status_code == 201
    before = await stored_state(services)
    await sign_in(http, world["alice"])
    csrf = await account_csrf(http)
    response = await post_form(
        http,
        world.acme_folder,
        [("csrf_token", None, csrf.encode()), ("file", "big.bin", (b"x" * 100 for _ in range(9)))],
    )
    assert response.status_code == 413
    assert "storage quota" in response.text
    assert await stored_state(services) == before
    fits = await post_form(
        http, world.acme_folder, [("csrf_token", None, csrf.encode()), ("file", "s.bin", b"s" * 9)]
    )
    assert fits.status_code == 303


async def test_usage_alerts_are_recorded_once_at_80_90_and_100_percent(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    for size in (500, 300, 50, 60, 10, 80):  # 50 %, 80 %, 85 %, 91 %, 92 %, 100 %
        assert (await put(http, world, f"{size}.bin", b"q" * size)).status_code == 201
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "quota.threshold")
            .order_by(col(AuditEvent.seq))
        )
        events = list(found.scalars())
    assert [json.loads(e.details)["percent"] for e in events] == [80, 90, 100]
    assert all(e.client_id == str(world.acme) for e in events)


async def test_a_tus_upload_past_a_threshold_records_it(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(Engine, "commit", committed)
    try:
        created = await http.post(
            "/api/v1/uploads",
            content=b"t" * 850,
            headers={
                **TUS,
                **world["alice"].auth,
                "Upload-Length": "850",
                "Upload-Metadata": metadata(filename="tus.bin", folder_id=str(world.acme_folder)),
                "Content-Type": "application/offset+octet-stream",
            },
        )
    finally:
        event.remove(Engine, "commit", committed)
    assert created.status_code == 201, created.text
    # Created, its part claimed and recorded, taken over to finish, the version, and the
    # usage noted after it: the usage takes the client's lock, which a version's own
    # transaction must not take after the audit log's (uploads finishing at once would
    # deadlock on PostgreSQL, as tests/web/test_tus_budget.py showed).
    assert len(commits) == 6
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).in_(["document.created", "quota.threshold"]))
            .order_by(col(AuditEvent.seq))
        )
        events = list(found.scalars())
    assert [e.action for e in events] == ["document.created", "quota.threshold"]
    assert json.loads(events[1].details)["percent"] == 80


async def test_restoring_a_version_past_the_quota_is_refused(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    first = await put(http, world, "a.bin", b"a" * 400)
    assert (await put(http, world, "a.bin", b"b" * 400)).status_code == 200
    await set_quota(services, world.acme, 1000)
    before = await stored_state(services)
    document_id = first.json()["document_id"]
    response = await http.post(
        f"/api/v1/documents/{document_id}/versions/1/restore", headers=world["sam"].auth
    )
    assert response.status_code == 413
    assert (response.json()["quota"], response.json()["used"], response.json()["requested"]) == (
        1000,
        800,
        400,
    )
    assert await stored_state(services) == before
    async with transaction(services.sessions) as session:
        assert await quotas.reserved_bytes(session, world.acme) == 0
    await set_quota(services, world.acme, 1200)
    response = await http.post(
        f"/api/v1/documents/{document_id}/versions/1/restore", headers=world["sam"].auth
    )
    assert response.status_code == 201
    async with transaction(services.sessions) as session:
        assert await quotas.reserved_bytes(session, world.acme) == 0
        assert await quotas.client_usage(session, world.acme) == 1200


async def test_publishing_into_a_client_past_its_quota_is_refused(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    source = (await put(http, world, "guide.pdf", b"g" * 500)).json()["document_id"]
    await set_quota(services, world.globex, 400)
    before = await stored_state(services)
    with pytest.raises(QuotaExceededError):
        await publishing.publish_copy(
            services.sessions,
            services.store,
            services.keyring,
            SYSTEM,
            audit.SYSTEM,
            document_id=uuid.UUID(source),
            version=1,
            folder_id=world.globex_folder,
            part_size=services.part_size,
        )
    assert await stored_state(services) == before
    await set_quota(services, world.globex, 500)
    copy = await publishing.publish_copy(
        services.sessions,
        services.store,
        services.keyring,
        SYSTEM,
        audit.SYSTEM,
        document_id=uuid.UUID(source),
        version=1,
        folder_id=world.globex_folder,
        part_size=services.part_size,
    )
    assert copy.client_id == world.globex
    async with transaction(services.sessions) as session:
        assert await quotas.client_usage(session, world.globex) == 500


async def test_concurrent_uploads_cannot_jointly_overshoot_the_quota(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    go_on = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"s" * 300
        await go_on.wait()
        yield b"s" * 300

    first = asyncio.create_task(
        http.put(
            f"/api/v1/folders/{world.acme_folder}/files/slow.bin",
            content=slow(),
            headers={**world["sam"].auth, "Content-Length": "600"},
        )
    )
    for _ in range(200):  # until the first upload holds its reservation
        async with transaction(services.sessions) as session:
            if await quotas.reserved_bytes(session, world.acme) == 600:
                break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the first upload never reserved its bytes")
    # Alone it would fit (600 of 1000 free), beside the first it does not.
    second = await put(http, world, "fast.bin", b"f" * 600)
    assert second.status_code == 413
    assert (second.json()["used"], second.json()["requested"]) == (600, 600)
    go_on.set()
    assert (await first).status_code == 201
    async with transaction(services.sessions) as session:
        assert await quotas.client_usage(session, world.acme) == 600
        assert await quotas.reserved_bytes(session, world.acme) == 0


async def test_a_finished_resumable_upload_counts_and_alerts(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await set_quota(services, world.acme, 1000)
    response = await http.post(
        "/api/v1/uploads",
        content=b"t" * 850,
        headers={
            **world["sam"].auth,
            **TUS,
            "Upload-Length": "850",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Metadata": metadata(filename="t.bin", folder_id=str(world.acme_folder)),
        },
    )
    assert response.status_code == 201, response.text
    assert "Document-Id" in response.headers or "document-id" in response.headers
    async with transaction(services.sessions) as session:
        assert await quotas.client_usage(session, world.acme) == 850
        assert await quotas.reserved_bytes(session, world.acme) == 0
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "quota.threshold")
        )
        assert [json.loads(e.details)["percent"] for e in found.scalars()] == [80]


class TestHeldVersions:
    """Every upload waits in quarantine (no scanner here: staff release them)."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"scan": ScanSettings(all_uploads=True, worker=False)})

    async def test_held_bytes_count_and_publishing_them_changes_nothing(
        self, http: httpx.AsyncClient, services: Services, world: World
    ) -> None:
        await set_quota(services, world.acme, 1000)
        assert (await put(http, world, "a.bin", b"a" * 600)).status_code == 202
        usage = await http.get(f"/api/v1/clients/{world.acme}/usage", headers=world["ada"].auth)
        assert usage.json()["used_bytes"] == 600
        before = await stored_state(services)
        # It would fit if the held 600 bytes were not counted.
        refused = await put(http, world, "b.bin", b"b" * 500)
        assert refused.status_code == 413, refused.text
        assert (refused.json()["used"], refused.json()["requested"]) == (600, 500)
        assert await stored_state(services) == before
        length = {**TUS, **world["sam"].auth, "Upload-Length": "500"}
        tus = await http.post(
            "/api/v1/uploads",
            headers={
                **length,
                "Upload-Metadata": metadata(filename="c.bin", folder_id=str(world.acme_folder)),
            },
        )
        assert tus.status_code == 413, tus.text

        async with transaction(services.sessions) as session:
            [row] = (await session.execute(select(HeldVersion))).scalars().all()
            user = await session.get_one(User, world["sam"].id)
            staff = await accounts.principal_for(session, user)
        async with transaction(services.sessions) as session:
            version = await quarantine.release(
                session, staff, audit.AuditContext(actor_role="staff"), row.version_id
            )
            assert version.number == 1
            assert await quotas.client_usage(session, world.acme) == 600
        assert (await put(http, world, "b.bin", b"b" * 500)).status_code == 413
        assert (await put(http, world, "b.bin", b"b" * 400)).status_code == 202
        async with transaction(services.sessions) as session:
            assert await quotas.client_usage(session, world.acme) == 1000


@pytest.mark.parametrize("quota", [0, 10**9])
async def test_an_upload_sums_the_clients_versions_only_against_a_quota(
    http: httpx.AsyncClient, world: World, services: Services, quota: int
) -> None:
    """The sums read every version the client has; without a quota there is nothing to
    check them against."""
    await set_quota(services, world.acme, quota)
    await put(http, world, "earlier.txt", b"e" * 100)
    with statements_sent() as sent:
        await put(http, world, "later.txt", b"l" * 100)
    statements = [" ".join(s.lower().split()) for s in sent]
    sums = [s for s in statements if "sum(versions.size)" in s]
    # Admitted, settled and its thresholds noted: each sums once under a quota.
    assert len(sums) == (3 if quota else 0), sums
