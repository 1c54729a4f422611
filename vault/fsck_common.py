"""What `clientvault fsck`'s passes share (`vault.fsck` over versions, `vault.fsck_thumbnails`
over thumbnails): the kinds of problem, the report, and walking two key-ordered sources."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import col

from vault.errors import FsckError

# Kinds of problem, as printed and counted in the `storage.checked` event.
MISSING = "missing"
ORPHAN = "orphan"
SIZE = "size"
HEADER = "header"
KEY = "key"
CONTENT = "content"
UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one stored object (a thumbnail's names the version it shows)."""

    kind: str
    key: str
    detail: str
    version_id: str | None = None
    document_id: str | None = None
    number: int | None = None


@dataclass(slots=True)
class FsckReport:
    """Counts only: the problems themselves go to `on_problem` as they are found."""

    versions: int = 0
    objects: int = 0
    skipped_recent: int = 0
    # Stored thumbnails and thumbnail objects walked (neither counts among the above).
    thumbnails: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return not self.problems


def key_page(
    statement: Select[*tuple[Any, ...]],
    column: InstrumentedAttribute[Any] | Any,
    dialect: str,
    prefix: str,
    after: str,
    batch: int,
) -> Select[*tuple[Any, ...]]:
    """`statement` narrowed to the next `batch` rows whose `column` (a storage key) starts
    with `prefix` and comes after `after`, in key order."""
    # The merge needs the store's order, which is byte order (S3's, and the local store's).
    # PostgreSQL sorts text by the database's locale, which skips punctuation such as "-" and
    # "/" at first; the "C" collation is byte order, and migration 0024 indexes the keys in
    # it so that each page is a range scan. SQLite's default BINARY already is byte order.
    key = col(column).collate("C") if dialect == "postgresql" else col(column)
    return (
        statement.where(col(column).startswith(prefix, autoescape=True), key > after)
        .order_by(key)
        .limit(batch)
    )


async def ordered(items: AsyncIterator[Any], what: str) -> AsyncGenerator[Any, None]:
    """Pass `items` through, failing loudly if their keys ever go backwards: the merge would
    otherwise report healthy objects as missing and orphaned."""
    last = ""
    try:
        async for item in items:
            current: str = item.key
            if current < last:
                raise FsckError(f"{what} is not in key order ({current!r} after {last!r})")
            last = current
            yield item
    finally:
        # Release the source (a store listing, a directory walk) promptly on an early exit.
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


async def next_item(items: AsyncIterator[Any]) -> Any:
    return await anext(items, None)
