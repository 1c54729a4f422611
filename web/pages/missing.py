"""The page for a path that matches no route: the styled 404 page a browser expects, with the
signed-in navigation when there is a session, instead of the API's problem+json."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.errors import handle_http
from web.pages.common import signed_in_context
from web.pages.render import render

logger = logging.getLogger(__name__)

# Paths that belong to machines: they keep the API's problem+json answer.
MACHINE_PREFIXES = ("/api/", "/static/", "/metrics", "/healthz", "/readyz")


async def handle_http_for_pages(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if (
        exc.status_code != 404
        or request.method not in ("GET", "HEAD")
        or path.startswith(MACHINE_PREFIXES)
    ):
        return await handle_http(request, exc)
    context = await signed_in_context(request)
    return render(request, "error.html", status=404, **context)


async def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico on pages that name no icon (files, previews).
    return RedirectResponse("/static/favicon.svg", status_code=301)
