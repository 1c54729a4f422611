"""Records management: a client's storage usage and quota, retention policies, legal holds.

`GET /clients/{id}/usage` answers anyone who may see the client; everything else is for
administrators (others get 403, or 404 for a client they may not see).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import holds, quotas, retention
from vault.folders import get_client
from vault.policy import require_admin
from vault.records import CLIENT_SCOPE, LegalHold, RetentionPolicy, record_viewed
from web.api.common import api_call, iso, parse_id
from web.api.inputs import Body, parse_body
from web.context import services


def usage_json(usage: quotas.Usage) -> dict[str, Any]:
    return {
        "used_bytes": usage.stored,
        "reserved_bytes": usage.reserved,
        "quota_bytes": usage.quota or None,
        "percent": usage.percent,
    }


def policy_json(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "folder_id": None if policy.scope == CLIENT_SCOPE else policy.scope,
        "keep_versions": policy.keep_versions,
        "keep_days": policy.keep_days,
        "trash_days": policy.trash_days,
        "updated_at": iso(policy.updated_at),
    }


def hold_json(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": str(hold.id),
        "client_id": str(hold.client_id),
        "folder_id": str(hold.folder_id) if hold.folder_id else None,
        "reason": hold.reason,
        "placed_at": iso(hold.placed_at),
        "placed_by": str(hold.placed_by) if hold.placed_by else None,
        "released_at": iso(hold.released_at),
        "released_by": str(hold.released_by) if hold.released_by else None,
        "release_reason": hold.release_reason,
    }


Count = Annotated[int, Field(ge=0)]


class Quota(Body):
    quota_bytes: Count | None  # required; null returns the client to the default


class Retention(Body):
    keep_versions: Count | None = None
    keep_days: Count | None = None
    trash_days: Count | None = None
    folder_id: str | None = None


class NewHold(Body):
    reason: str
    folder_id: str | None = None


class Release(Body):
    reason: str


def _folder(raw: str | None) -> uuid.UUID | None:
    return None if raw is None else parse_id(raw, "folder")


async def _viewed(call: Any, client_id: uuid.UUID, what: str) -> None:
    await record_viewed(call.session, call.audit, client_id, what)


async def get_usage(request: Request) -> JSONResponse:
    default = services(request).settings.quotas.default_bytes
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        await get_client(call.session, call.principal, client_id)
        usage = await quotas.usage(call.session, client_id, default=default)
        await _viewed(call, client_id, "usage")
        return JSONResponse(usage_json(usage))


async def set_quota(request: Request) -> JSONResponse:
    default = services(request).settings.quotas.default_bytes
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        body = await parse_body(request, Quota)
        usage = await quotas.set_quota(
            call.session,
            call.principal,
            call.audit,
            client_id,
            body.quota_bytes,
            default=default,
        )
        return JSONResponse(usage_json(usage))


async def get_retention(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        policies = await retention.list_policies(call.session, call.principal, client_id)
        await _viewed(call, client_id, "retention")
        return JSONResponse({"policies": [policy_json(p) for p in policies]})


async def set_retention(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        body = await parse_body(request, Retention)
        rules = retention.Rules(body.keep_versions, body.keep_days, body.trash_days)
        folder_id = _folder(body.folder_id)
        policy = await retention.set_policy(
            call.session, call.principal, call.audit, client_id, folder_id=folder_id, rules=rules
        )
        if policy is None:
            return JSONResponse(
                {"folder_id": str(folder_id) if folder_id else None, "removed": True}
            )
        return JSONResponse(policy_json(policy))


async def retention_plan(request: Request) -> JSONResponse:
    """What retention would delete now (a dry run)."""
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        await get_client(call.session, call.principal, client_id)
        require_admin(call.principal, "see what retention would delete")
        doomed = await retention.plan(call.session, client_id=client_id)
        await _viewed(call, client_id, "retention_plan")
        return JSONResponse({"items": [item.as_json() for item in doomed]})


async def list_holds(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        found = await holds.list_holds(call.session, call.principal, client_id)
        await _viewed(call, client_id, "holds")
        return JSONResponse({"holds": [hold_json(h) for h in found]})


async def place_hold(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        hold_body = await parse_body(request, NewHold)
        hold = await holds.place_hold(
            call.session,
            call.principal,
            call.audit,
            client_id,
            folder_id=_folder(hold_body.folder_id),
            reason=hold_body.reason,
        )
        return JSONResponse(hold_json(hold), status_code=201)


async def release_hold(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        hold_id = parse_id(request.path_params["hold_id"], "hold")
        release = await parse_body(request, Release)
        hold = await holds.release_hold(
            call.session, call.principal, call.audit, hold_id, reason=release.reason
        )
        return JSONResponse(hold_json(hold))
