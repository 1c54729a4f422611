"""The records page of a client (administrators): its storage against its quota, its
retention policies with what they would delete now, and its legal holds, each with a small
form. Linked from the client's folder pages and from the admin console."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import folders as folder_service
from vault import holds, quotas, records, retention
from vault.db import transaction
from vault.errors import InvalidHoldError, InvalidInput, InvalidPolicyError, NotFoundError
from vault.models import Client, Role
from vault.records import CLIENT_SCOPE
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render

NOTICES = frozenset({"quota", "retention", "held", "released"})
MAX_PLAN_SHOWN = 200


def routes() -> list[BaseRoute]:
    base = "/admin/clients/{client_id}/records"
    return [
        Route(base, records_page, methods=["GET"]),
        Route(f"{base}/quota", set_quota, methods=["POST"]),
        Route(f"{base}/retention", set_retention, methods=["POST"]),
        Route(f"{base}/holds", place_hold, methods=["POST"]),
        Route(f"{base}/holds/{{hold_id}}/release", release_hold, methods=["POST"]),
    ]


async def _admin_client(
    request: Request, session: AsyncSession, csrf: str | None = None
) -> tuple[Caller, Client]:
    caller = await browser_caller(request, session, csrf_token=csrf)
    client = await folder_service.get_client(
        session, caller.principal, parse_id(request.path_params["client_id"], "client")
    )
    # The page exists for administrators only; to anyone else it is not there (deny = 404).
    if caller.principal.role is not Role.ADMIN or caller.principal.read_only:
        raise NotFoundError("no such page")
    return caller, client


async def _page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    client: Client,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    assert caller.browser is not None
    default = services(request).settings.quotas.default_bytes
    paths = await folder_service.folder_paths(session, client.id)
    policies = await retention.list_policies(session, caller.principal, client.id)
    doomed = await retention.plan(session, client_id=client.id)
    found = await holds.list_holds(session, caller.principal, client.id)
    own = await quotas.quota_of(session, client.id, default=-1)
    await records.record_viewed(
        session, audit_context(request, caller.principal), client.id, "page"
    )
    return render(
        request,
        "records.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        client=client,
        notice=notice(request, NOTICES),
        errors=errors or {},
        usage=await quotas.usage(session, client.id, default=default),
        own_quota=None if own == -1 else own,
        default_quota=default,
        folders=sorted(paths.items(), key=lambda item: item[1]),
        paths=paths,
        policies=[
            (p, None if p.scope == CLIENT_SCOPE else paths.get(uuid.UUID(p.scope), ""))
            for p in policies
        ],
        doomed=doomed[:MAX_PLAN_SHOWN],
        doomed_count=len(doomed),
        doomed_bytes=sum(d.size for d in doomed),
        holds=found,
    )


@page
async def records_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller, client = await _admin_client(request, session)
        return await _page(request, session, caller, client)


def _count(form: dict[str, str], field: str) -> int | None:
    """An optional whole number from a form field; InvalidInput if it is not one."""
    text = form.get(field, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput("not a whole number", field=field, rule="number")
    return int(text)


def _scope(raw: str, known: dict[uuid.UUID, str]) -> uuid.UUID | None:
    if raw in ("", CLIENT_SCOPE):
        return None
    folder_id = parse_id(raw, "folder")
    if folder_id not in known:
        raise NotFoundError("folder not found")
    return folder_id


async def _refused(
    request: Request, session: AsyncSession, caller: Caller, client: Client, form: str, code: str
) -> Response:
    return await _page(request, session, caller, client, status=422, errors={form: code})


@page
async def set_quota(request: Request) -> Response:
    form = await read_form(request)
    default = services(request).settings.quotas.default_bytes
    async with transaction(services(request).sessions) as session:
        caller, client = await _admin_client(request, session, form.get(CSRF_FIELD, ""))
        try:
            wanted = _count(form, "quota")
        except InvalidInput:
            return await _refused(request, session, caller, client, "quota", "number")
        await quotas.set_quota(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            client.id,
            wanted,
            default=default,
        )
    return see_other(f"/admin/clients/{client.id}/records?done=quota")


@page
async def set_retention(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller, client = await _admin_client(request, session, form.get(CSRF_FIELD, ""))
        paths = await folder_service.folder_paths(session, client.id)
        folder_id = _scope(form.get("scope", ""), paths)
        try:
            rules = retention.Rules(
                _count(form, "keep_versions"),
                _count(form, "keep_days"),
                _count(form, "trash_days"),
            )
            await retention.set_policy(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                client.id,
                folder_id=folder_id,
                rules=rules,
            )
        except (InvalidInput, InvalidPolicyError):
            return await _refused(request, session, caller, client, "retention", "number")
    return see_other(f"/admin/clients/{client.id}/records?done=retention")


@page
async def place_hold(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller, client = await _admin_client(request, session, form.get(CSRF_FIELD, ""))
        paths = await folder_service.folder_paths(session, client.id)
        folder_id = _scope(form.get("scope", ""), paths)
        try:
            await holds.place_hold(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                client.id,
                folder_id=folder_id,
                reason=form.get("reason", ""),
            )
        except InvalidHoldError:
            return await _refused(request, session, caller, client, "hold", "reason")
    return see_other(f"/admin/clients/{client.id}/records?done=held")


@page
async def release_hold(request: Request) -> Response:
    form = await read_form(request)
    hold_id = parse_id(request.path_params["hold_id"], "hold")
    async with transaction(services(request).sessions) as session:
        caller, client = await _admin_client(request, session, form.get(CSRF_FIELD, ""))
        standing = await holds.list_holds(session, caller.principal, client.id)
        if hold_id not in {h.id for h in standing}:
            raise NotFoundError("hold not found")
        try:
            await holds.release_hold(
                session,
                caller.principal,
                audit_context(request, caller.principal),
                hold_id,
                reason=form.get("reason", ""),
            )
        except InvalidHoldError:
            return await _refused(request, session, caller, client, f"release-{hold_id}", "reason")
    return see_other(f"/admin/clients/{client.id}/records?done=released")
