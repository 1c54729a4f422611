"""Ids as the API and the pages take them from paths, queries, bodies and tus metadata."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from vault.errors import NotFoundError

__all__ = ["id_or_none", "parse_id", "parse_ids"]


def parse_id(value: str, what: str = "resource") -> uuid.UUID:
    """The id in `value`; ids are opaque, so a malformed one is simply not found (404),
    like an id that never existed, and says nothing about the ids that do."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(f"{what} not found") from None


def id_or_none(value: str | None) -> uuid.UUID | None:
    """The id in `value`, or None where there is none: a filter left empty or mistyped
    narrows nothing, as a lookup of an unknown id finds nothing."""
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


def parse_ids(values: Iterable[str]) -> list[uuid.UUID] | None:
    """The ids of a many-valued form field, each once, in order; None if any is malformed
    (the form was not the one the page sent)."""
    try:
        return list(dict.fromkeys(uuid.UUID(value) for value in values))
    except ValueError:
        return None
