"""Refused requests into the audit log, from the error handlers of the API and the pages.

The refused request's transaction has rolled back by the time its error reaches a handler,
so the refusal is recorded in a transaction of its own (vault.refusals owns the event and
its rate limit; this module only describes the request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from vault import refusals
from vault.db import transaction
from vault.policy import Principal
from web.context import audit_context, services

logger = logging.getLogger(__name__)

# The refusals of access; other 4xx answers are about the request's form, not its right.
DEFAULT_REASONS = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
_PRINCIPAL = "refused_principal"


def remember_principal(request: Request, principal: Principal) -> None:
    """Keep who the caller is for the error handler, which runs after the rollback."""
    setattr(request.state, _PRINCIPAL, principal)


def route_template(request: Request) -> str | None:
    """The template of the matched route (`/api/v1/documents/{document_id}`), or None when
    no route matched; never the raw path, which may carry a reset or invitation token."""
    endpoint: Callable[..., Any] | None = request.scope.get("endpoint")
    if endpoint is None:
        return None
    return _find(request.app.routes, "", endpoint, request.method)


def _find(
    routes: Sequence[BaseRoute], prefix: str, endpoint: Callable[..., Any], method: str
) -> str | None:
    for route in routes:
        if isinstance(route, Mount):
            found = _find(route.routes, prefix + route.path, endpoint, method)
            if found is not None:
                return found
        elif (
            isinstance(route, Route)
            and route.endpoint is endpoint
            and (route.methods is None or method in route.methods)
        ):
            return prefix + route.path
    return None


def _target(request: Request) -> tuple[str | None, str | None]:
    # Only parameters that name an id: `{token}` parameters are secrets and stay out.
    found: tuple[str | None, str | None] = (None, None)
    for name, value in request.path_params.items():
        if name.endswith("_id") and isinstance(value, str):
            found = (name.removesuffix("_id"), value)
    return found


async def audit_refusal(request: Request, status: int, reason: str | None = None) -> None:
    """Record a refused request (401, 403, 404 on a matched route, or any status given with
    its `reason`, such as a page's redirect to sign in); never raises."""
    if status not in DEFAULT_REASONS and reason is None:
        return
    route = route_template(request)
    if route is None:
        return  # an unknown path: nothing was refused, there was nothing there
    principal: Principal | None = getattr(request.state, _PRINCIPAL, None)
    target_type, target_id = _target(request)
    refusal = refusals.Refusal(
        method=request.method,
        route=route,
        reason=reason or DEFAULT_REASONS.get(status, "refused"),
        status=status,
        target_type=target_type,
        target_id=target_id,
    )
    try:
        async with transaction(services(request).sessions) as session:
            await refusals.record(
                session, audit_context(request, principal), refusal, now=datetime.now(UTC)
            )
    except Exception:
        # The caller gets its refusal whatever happens here; the log says why it is missing.
        logger.exception("could not audit a refused %s %s", request.method, route)
