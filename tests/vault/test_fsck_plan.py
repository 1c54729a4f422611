"""On PostgreSQL each page of fsck's key-ordered walks is a range scan of an index, not a
sort of the whole table: with only the unique indexes in the database's collation, every
page sorted all the versions, 0.6 s a page at a million (bench/fsck.py), so fsck grew with
the square of the store. Migration 0024 adds the "C"-collation indexes the walks use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Select, text

from vault import fsck, fsck_thumbnails
from web.services import Services

Page = Callable[[str, str, str, int], Select[*tuple[Any, ...]]]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("page", [fsck.versions_page, fsck_thumbnails.thumbnails_page])
async def test_each_page_is_an_index_range_scan(services: Services, page: Page) -> None:
    statement = page("postgresql", "objects/", "objects/5", 500).compile(
        dialect=services.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    async with services.engine.connect() as conn:
        # The tables are empty, so make the planner say how it would read a large one.
        await conn.execute(text("SET enable_seqscan = off"))
        await conn.execute(text("SET enable_sort = off"))
        plan = [str(line) for line in (await conn.execute(text(f"EXPLAIN {statement}"))).scalars()]
    assert not any("Sort" in line for line in plan), "\n".join(plan)
    assert any("storage_key_bytes" in line for line in plan), "\n".join(plan)
