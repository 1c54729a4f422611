"""The firm's console under /admin: people, clients, operations and reports."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.pages import console_clients, console_ops, console_people, console_reports

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [
        *console_people.routes(),
        *console_clients.routes(),
        *console_ops.routes(),
        *console_reports.routes(),
    ]
