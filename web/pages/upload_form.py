"""Uploading from the browser: the drag-and-drop panel (tus, in upload.js) and the plain
form that works without JavaScript."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
