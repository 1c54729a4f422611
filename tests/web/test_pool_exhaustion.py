"""Every pooled database connection busy: a request waits `[database].pool_timeout_seconds`
for one, then answers 503 with `Retry-After` (problem+json on the API, a page in the
browser), and the pool serves again once a connection comes back (issue 18)."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from tests.fixtures.app import World
from web.app import create_app
from web.settings import DatabaseSettings, Settings

pytestmark = pytest.mark.postgresql

WAIT = 0.5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One connection and one overflow: two held connections exhaust the pool.
    database = DatabaseSettings(url=settings.database.url, pool_size=1, pool_timeout_seconds=WAIT)
    # Nothing but the test may hold a connection: the background workers are off in every
    # test's settings (tests/fixtures/app.py).
    return settings.model_copy(update={"database": database})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_request_finding_every_connection_busy_answers_503_then_the_pool_heals(
    world: World, settings: Settings
) -> None:
    alice = world["alice"]
    async with LifespanManager(create_app(settings), startup_timeout=60) as manager:
        # The app's own engine, from the state its lifespan handed to requests.
        engine = manager._state["services"].engine
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/api/v1/me", headers=alice.auth)).status_code == 200
            async with AsyncExitStack() as held:
                for _ in range(2):  # pool_size 1 plus as many again in overflow
                    connection = await held.enter_async_context(engine.connect())
                    await connection.execute(text("SELECT 1"))
                started = time.monotonic()
                api = await http.get("/api/v1/me", headers=alice.auth)
                waited = time.monotonic() - started
                assert api.status_code == 503
                assert api.headers["content-type"].startswith("application/problem+json")
                assert api.headers["retry-after"] == "5"
                assert api.json()["title"] == "Database unavailable"
                # It gave up after the configured wait, not the default ten seconds.
                assert WAIT <= waited < 5
                page = await http.get("/", headers={"cookie": "cv_session=x"})
                assert page.status_code == 503
                assert page.headers["content-type"].startswith("text/html")
            # The held connections went back to the pool: the next request is served.
            assert (await http.get("/api/v1/me", headers=alice.auth)).status_code == 200
