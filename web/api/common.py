"""Helpers shared by the API routes: JSON bodies, ids, the request transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault.audit import AuditContext
from vault.db import transaction
from vault.models import User
from vault.policy import Principal
from web.auth import authenticate
from web.context import audit_context, services
from web.errors import ProblemError

MAX_JSON_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API call inside its database transaction."""

    session: AsyncSession
    principal: Principal
    user: User
    audit: AuditContext


@asynccontextmanager
async def api_call(request: Request) -> AsyncIterator[Call]:
    async with transaction(services(request).sessions) as session:
        principal, user = await authenticate(request, session)
        yield Call(session, principal, user, audit_context(request, principal))


def parse_id(value: str, what: str = "resource") -> uuid.UUID:
    """Ids are opaque; a malformed one is simply not found (404), like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(404, "Not found", f"{what} not found") from None


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise ProblemError(413, "Content too large", "JSON bodies are limited to 64 KiB")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProblemError(400, "Bad request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProblemError(400, "Bad request", "the body must be a JSON object")
    return data


def string_field(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ProblemError(422, "Invalid request", f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise ProblemError(422, "Invalid request", f"{name} must be a string", field=name)
    return value


def iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
