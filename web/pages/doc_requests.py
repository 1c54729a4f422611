"""Document requests in the browser: staff ask for named documents, clients upload against
each item."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
