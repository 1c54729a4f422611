"""The Starlette application factory: `uvicorn --factory web.app:create_app`."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TypedDict

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import notify
from notify import alert_mail
from vault import audit, records_worker, scanning, thumbnail_worker
from vault.audit import checkpoints
from vault.db import check_migrated
from web import access_log, health, link_uploads, unsubscribe
from web.api import routes as api_routes
from web.errors import EXCEPTION_HANDLERS
from web.headers import HeaderLimitMiddleware, SecurityHeadersMiddleware
from web.idle_memory import IdleRelease
from web.malloc import tune_allocator
from web.metrics import Metrics, metrics_endpoint
from web.observe import ObserveMiddleware, configure_logging
from web.pages import missing
from web.pages import routes as page_routes
from web.routing import one_route_per_path
from web.services import (
    Services,
    alert_rules,
    build_mailer,
    notify_config,
    open_services,
    scan_policy,
)
from web.settings import Settings, load_settings

logger = logging.getLogger(__name__)


class State(TypedDict):
    services: Services


def create_app(
    settings: Settings | None = None, *, draining: threading.Event | None = None
) -> Starlette:
    """Build the app; settings are loaded from the config file and environment if not given.

    `draining`, once set (by `web.serve` on a stop signal), makes `/readyz` answer 503.
    """
    if settings is None:
        # Started by uvicorn as a worker process (`serve` with several workers): set up
        # logging here, as `serve` did for itself. Given settings, the caller owns logging.
        settings = load_settings()
        configure_logging(format=settings.logging.format, level=settings.logging.level)
    metrics = Metrics() if settings.metrics.enabled else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        access_log.install()
        tune_allocator()  # before the first large transfer: see web/malloc.py
        async with open_services(settings, metrics=metrics) as services:
            # Refuse to serve on a schema this code does not know: a clear message beats
            # a half-working portal that fails on the first query.
            await check_migrated(services.engine)
            signer = services.checkpoint_signer  # a keyring without a log key gets one now
            async with anyio.create_task_group() as tasks:
                # Signed checkpoints of the audit log, every interval while it grows.
                tasks.start_soon(
                    partial(
                        checkpoints.run,
                        services.sessions,
                        services.store,
                        signer,
                        interval=settings.audit.checkpoint_interval_seconds,
                    )
                )
                if settings.alerts.worker:
                    # Alert rules over new events, emailed to auditors through the outbox.
                    tasks.start_soon(
                        partial(
                            alert_mail.run,
                            services.sessions,
                            alert_rules(settings),
                            public_url=settings.server.public_url,
                            interval_seconds=settings.alerts.interval_seconds,
                        )
                    )
                if settings.notify.worker:
                    # The in-process notifier; any number may run (one per app process).
                    tasks.start_soon(
                        notify.run,
                        services.sessions,
                        build_mailer(settings),
                        notify_config(settings, services.keyring),
                    )
                if settings.scan.worker:
                    # Takes versions out of quarantine; any number may run (one per process).
                    tasks.start_soon(
                        partial(
                            scanning.run,
                            services.sessions,
                            services.store,
                            services.keyring,
                            scan_policy(settings),
                            interval=settings.scan.interval_seconds,
                        )
                    )
                if settings.previews.worker:
                    # Thumbnails of new images and PDFs; any number may run (one per process).
                    tasks.start_soon(
                        partial(
                            thumbnail_worker.run,
                            services.sessions,
                            services.store,
                            services.keyring,
                            max_bytes=services.thumbnail_max_bytes,
                            part_size=services.part_size,
                            limiter=services.thumbnail_limiter,
                            interval=settings.previews.worker_interval_seconds,
                        )
                    )
                if settings.retention.worker:
                    tasks.start_soon(
                        partial(
                            records_worker.run,
                            services.sessions,
                            services.store,
                            interval_seconds=settings.retention.interval_minutes * 60,
                            default_quota=settings.quotas.default_bytes,
                        )
                    )
                logger.info("ClientVault ready on %s", settings.server.public_url)
                stop_observing = (
                    audit.observe_appends(metrics.audit_append.observe)
                    if metrics is not None
                    else lambda: None
                )
                try:
                    yield {"services": services}
                finally:
                    stop_observing()
                tasks.cancel_scope.cancel()

    routes: list[BaseRoute] = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/favicon.ico", missing.favicon, methods=["GET"]),
        Mount("/api/v1", routes=api_routes()),
        *unsubscribe.routes(),
        *link_uploads.routes(),
        Mount("/static", app=StaticFiles(packages=[("web", "static")]), name="static"),
        *page_routes(),
    ]
    app = Starlette(
        debug=False,
        routes=one_route_per_path(routes),
        lifespan=lifespan,
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: missing.handle_http_for_pages},
        middleware=[
            # Outermost, so its duration and status cover everything, errors included.
            Middleware(
                ObserveMiddleware,
                metrics=metrics,
                trust_request_id=settings.logging.trust_request_id,
                idle=IdleRelease(),
            ),
            Middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies),
            Middleware(HeaderLimitMiddleware),
        ],
    )
    app.state.draining = draining or threading.Event()
    return app
