"""The folder browser: a client's folders, search, documents, versions, previews, trash."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
