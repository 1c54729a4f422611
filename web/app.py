"""The Starlette application factory: `uvicorn --factory web.app:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import notify
from vault.db import check_migrated
from web import health, unsubscribe
from web.api import routes as api_routes
from web.errors import EXCEPTION_HANDLERS
from web.headers import SecurityHeadersMiddleware
from web.memory import tune_malloc
from web.pages import routes as page_routes
from web.services import Services, build_mailer, notify_config, open_services
from web.settings import Settings, load_settings

logger = logging.getLogger(__name__)


class State(TypedDict):
    services: Services


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; settings are loaded from the config file and environment if not given."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        tune_malloc()  # per process: each worker runs its own lifespan
        async with open_services(settings) as services:
            # Refuse to serve on a schema this code does not know: a clear message beats
            # a half-working portal that fails on the first query.
            await check_migrated(services.engine)
            async with anyio.create_task_group() as tasks:
                if settings.notify.worker:
                    # The in-process notifier; any number may run (one per app process).
                    tasks.start_soon(
                        notify.run,
                        services.sessions,
                        build_mailer(settings),
                        notify_config(settings, services.keyring),
                    )
                logger.info("ClientVault ready on %s", settings.server.public_url)
                yield {"services": services}
                tasks.cancel_scope.cancel()

    routes: list[BaseRoute] = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Mount("/api/v1", routes=api_routes()),
        *unsubscribe.routes(),
        Mount("/static", app=StaticFiles(packages=[("web", "static")]), name="static"),
        *page_routes(),
    ]
    return Starlette(
        debug=False,
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies)],
    )
