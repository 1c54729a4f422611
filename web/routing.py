"""One route per path, whatever the number of methods it answers.

Starlette answers a method no route takes with the `Allow` of the first route whose path
matched, so a path declared once per method would list only that first route's methods.
RFC 9110 §15.5.6: a 405 lists every method the target resource supports; merging the
routes of one path into one route makes Starlette's own 405 say exactly that, and
`allowed_methods` completes it where two templates match one path
(`/s/{token}/uploads/{upload_id}` and `/s/{token}/uploads/form`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

Endpoint = Callable[[Request], Awaitable[Response]]

__all__ = ["allowed_methods", "one_route_per_path"]


def _dispatcher(handlers: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        # Starlette adds HEAD to a route with GET: it is served by the GET handler.
        method = request.method if request.method in handlers else "GET"
        return await handlers[method](request)

    endpoint.__name__ = "_".join(sorted({_name(h) for h in handlers.values()}))
    return endpoint


def _name(handler: Endpoint) -> str:
    return getattr(handler, "__name__", None) or getattr(handler, "func", handler).__name__


def one_route_per_path(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The same routes, those of one path merged into one that dispatches on the method.

    The merged route takes the place of the path's first route; mounts and other routes
    stay as they are, in their order.
    """
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            by_path.setdefault(route.path, []).append(route)
    merged: list[BaseRoute] = []
    for route in routes:
        if not (isinstance(route, Route) and route.methods):
            merged.append(route)
            continue
        group = by_path[route.path]
        if route is not group[0]:
            continue
        if len(group) == 1:
            merged.append(route)
            continue
        handlers: dict[str, Endpoint] = {}
        for member in group:
            for method in member.methods or ():
                if method == "HEAD" and "GET" in (member.methods or ()):
                    continue  # implied by GET, served by the same handler
                if method in handlers:
                    raise ValueError(f"two routes answer {method} {route.path}")
                handlers[method] = member.endpoint
        merged.append(Route(route.path, _dispatcher(handlers), methods=sorted(handlers)))
    return merged


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route of the app answers on the request's path."""
    # A mount the request went through has moved `root_path` on; start again from the app's.
    return _allowed(
        routes, {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    )


def _allowed(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
    found: set[str] = set()
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            found |= _allowed(route.routes, {**scope, **child})
        elif isinstance(route, Route):
            found |= route.methods or set()
    return found
