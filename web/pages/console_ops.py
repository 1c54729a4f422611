"""The console's Operations page (admins): the email outbox's failed messages (retry one or
all), the keyring (KEKs, the active one, data keys each still wraps, rotate and re-wrap), and
the system's status (database, object store, scanner, version, schema revision)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from notify import outbox
from vault import keykeeping
from vault.clamd import ClamdScanner
from vault.db import current_revision, head_revision, transaction
from vault.errors import NotFoundError
from vault.policy import Permission, Principal, allows
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import notice, page, read_form, see_other
from web.pages.console_people import chrome, console_caller
from web.pages.render import render
from web.services import Services, scan_policy

logger = logging.getLogger(__name__)

# Seconds the status check waits for the virus scanner.
STATUS_TIMEOUT = 5.0

NOTICES = frozenset({"retried", "retried-all", "rotated", "rewrapped", "not-failed"})


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/operations", operations_page, methods=["GET"]),
        Route("/admin/operations/outbox/retry-all", retry_all, methods=["POST"]),
        Route("/admin/operations/outbox/{notification_id}/retry", retry_one, methods=["POST"]),
        Route("/admin/operations/keys/rotate", rotate, methods=["POST"]),
        Route("/admin/operations/keys/rewrap", rewrap, methods=["POST"]),
    ]


@dataclass(frozen=True, slots=True)
class Status:
    database: bool
    storage: bool
    scanner: bool | None  # None: no scanner is configured
    version: str
    revision: str | None
    head: str


def _require_admin(principal: Principal) -> None:
    if not allows(principal, Permission.MANAGE, None):
        raise NotFoundError("no such page")


async def scanner_status(svc: Services) -> bool | None:
    """Whether the configured clamd answers a PING; None when no scanner is configured."""
    scanner = scan_policy(svc.settings).scanner
    if not isinstance(scanner, ClamdScanner):
        return None
    # A status page must not wait a whole scan's timeout for a daemon that hangs.
    scanner.timeout = min(scanner.timeout, STATUS_TIMEOUT)
    try:
        return await scanner.ping()
    except Exception as exc:  # any failure is "unavailable"; the reason goes to the log
        logger.warning("status: scanner: %s", exc)
        return False


async def system_status(svc: Services) -> Status:
    try:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        database = True
    except Exception as exc:  # shown as unavailable; the reason goes to the log
        logger.warning("status: database: %s", exc)
        database = False
    try:
        await svc.store.check()
        storage = True
    except Exception as exc:
        logger.warning("status: storage: %s", exc)
        storage = False
    try:
        revision = await current_revision(svc.engine) if database else None
    except Exception:  # a database that answered SELECT 1 but not this is shown as unknown
        revision = None
    try:
        version = metadata.version("clientvault")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Status(
        database=database,
        storage=storage,
        scanner=await scanner_status(svc),
        version=version,
        revision=revision,
        head=head_revision(),
    )


@page
async def operations_page(request: Request) -> Response:
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session)
        _require_admin(caller.principal)
        failed = await outbox.failed(
            session, limit=100, context=audit_context(request, caller.principal)
        )
        keys = await keykeeping.state(session, caller.principal, svc.keyring)
        values = chrome(caller)
    return render(
        request,
        "console/operations.html",
        **values,
        notice=notice(request, NOTICES),
        failed=failed,
        keys=keys,
        system=await system_status(svc),
    )


@page
async def retry_one(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        _require_admin(caller.principal)
        found = await outbox.retry(
            session,
            audit_context(request, caller.principal),
            parse_id(request.path_params["notification_id"], "notification"),
            now=datetime.now(UTC),
        )
    return see_other(f"/admin/operations?done={'retried' if found else 'not-failed'}#outbox")


@page
async def retry_all(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        _require_admin(caller.principal)
        context = audit_context(request, caller.principal)
        moment = datetime.now(UTC)
        ids: list[uuid.UUID] = [n.id for n in await outbox.failed(session, limit=1000)]
        for notification_id in ids:
            await outbox.retry(session, context, notification_id, now=moment)
    return see_other("/admin/operations?done=retried-all#outbox")


@page
async def rotate(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session, form)
        await keykeeping.rotate(
            session, caller.principal, audit_context(request, caller.principal), svc.keyring
        )
    return see_other("/admin/operations?done=rotated#keys")


@page
async def rewrap(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session, form)
        _require_admin(caller.principal)
    await keykeeping.rewrap(
        svc.sessions, caller.principal, audit_context(request, caller.principal), svc.keyring
    )
    return see_other("/admin/operations?done=rewrapped#keys")
