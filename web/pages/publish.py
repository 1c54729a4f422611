"""Staff publishing: one report to one client folder or to many clients at once."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
