"""Ids as the API and the pages take them from paths, queries, bodies and tus metadata."""

from __future__ import annotations

import uuid

from vault.errors import NotFoundError

__all__ = ["parse_id"]


def parse_id(value: str, what: str = "resource") -> uuid.UUID:
    """The id in `value`; ids are opaque, so a malformed one is simply not found (404),
    like an id that never existed, and says nothing about the ids that do."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(f"{what} not found") from None
