"""Helpers shared by the API routes: JSON bodies, ids, the request transaction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault.accounts.identity import BrowserSession, SessionStage
from vault.audit import AuditContext
from vault.db import transaction
from vault.models import User
from vault.policy import Principal
from web.auth import authenticate, authenticate_caller
from web.context import audit_context, services
from web.errors import ProblemError
from web.ids import parse_id as parse_id  # one parser of ids for every route

MAX_JSON_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API call inside its database transaction."""

    session: AsyncSession
    principal: Principal
    user: User
    audit: AuditContext


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def prefetch_body(request: Request) -> None:
    """Read a small JSON body before the transaction starts, so that a slow sender does not
    hold a database transaction open; it is parsed only after authentication, so an
    unauthenticated caller learns nothing from validation errors."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not _is_json(request):
        return  # e.g. a streamed upload: its route reads the body itself
    await _read_bounded(request)


async def _read_bounded(request: Request) -> bytes:
    if hasattr(request, "_body"):
        cached: bytes = request._body
        return cached
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise ProblemError(413, "Content too large", "JSON bodies are limited to 64 KiB")
        chunks.append(chunk)
    # Starlette's Request.body() returns this cached copy from now on.
    request._body = b"".join(chunks)
    return request._body


@asynccontextmanager
async def api_call(request: Request) -> AsyncIterator[Call]:
    await prefetch_body(request)
    async with transaction(services(request).sessions) as session:
        principal, user = await authenticate(request, session)
        yield Call(session, principal, user, audit_context(request, principal))


@dataclass(frozen=True, slots=True)
class SessionCall(Call):
    """An API call made by a signed-in browser (account management needs one)."""

    browser: BrowserSession


@asynccontextmanager
async def session_call(
    request: Request,
    *,
    stages: frozenset[SessionStage] = frozenset({SessionStage.FULL}),
) -> AsyncIterator[SessionCall]:
    await prefetch_body(request)
    async with transaction(services(request).sessions) as session:
        caller = await authenticate_caller(request, session, stages=stages)
        if caller.browser is None:
            # A token must not mint tokens or change the password or second factor: a
            # leaked read-only token would otherwise become a full account takeover.
            raise ProblemError(
                403, "Forbidden", "manage your account from a signed-in browser session"
            )
        yield SessionCall(
            session,
            caller.principal,
            caller.user,
            audit_context(request, caller.principal),
            caller.browser,
        )


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body (read by `prefetch_body` for authenticated calls)."""
    body = await _read_bounded(request)
    try:
        data = json.loads(body or b"{}")
        # RFC 8259 §8.1: text must be UTF-8, yet the escape "\ud800" yields a lone surrogate
        # that no later encode (hashing, the database driver) accepts; refuse it here.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError/EncodeError and a numeral
        # past int()'s 4300-digit limit (CVE-2020-10735); RecursionError a 30,000-deep array.
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
