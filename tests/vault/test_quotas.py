"""Quota usage: every version and the trash count; admission reserves bytes under a lock."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.app import World
from vault import quotas
from vault.db import transaction
from vault.errors import QuotaExceededError
from web.services import Services


async def _put(http: httpx.AsyncClient, world: World, name: str, content: bytes) -> str:
    response = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/{name}",
        content=content,
        headers=world["sam"].auth,
    )
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def test_usage_counts_every_version_and_the_trash(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await _put(http, world, "a.txt", b"x" * 100)
    await _put(http, world, "a.txt", b"y" * 50)
    trashed = await _put(http, world, "b.txt", b"z" * 7)
    response = await http.delete(f"/api/v1/documents/{trashed}", headers=world["sam"].auth)
    assert response.status_code == 204
    async with transaction(services.sessions) as session:
        assert await quotas.client_usage(session, world.acme) == 157
        assert await quotas.usage_by_client(session) == {world.acme: 157, world.globex: 0}
        assert await quotas.usage_by_client(session, [world.globex]) == {world.globex: 0}


async def test_admission_counts_reservations_of_uploads_in_flight(
    services: Services, world: World
) -> None:
    async with transaction(services.sessions) as session:
        first = await quotas.admit(session, world.acme, 600, default=1000)
        assert first.reservation_id is not None
        assert first.room == 1000
    async with transaction(services.sessions) as session:
        with pytest.raises(QuotaExceededError) as refused:
            await quotas.admit(session, world.acme, 401, default=1000)
        assert (refused.value.quota, refused.value.used) == (1000, 600)
        second = await quotas.admit(session, world.acme, 400, default=1000)
        assert second.room == 400
    async with transaction(services.sessions) as session:
        await quotas.release(session, first)
        assert await quotas.reserved_bytes(session, world.acme) == 400
        unlimited = await quotas.admit(session, world.acme, 10**12, default=0)
        assert (unlimited.reservation_id, unlimited.room) == (None, None)
