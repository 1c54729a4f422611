"""Create-only writes and listings that start after a key, on every backend: what the audit
checkpoints rely on to find the newest one and never replace one that is stored."""

from __future__ import annotations

import asyncio

from storage import LocalObjectStore
from vault.store import ObjectStore


async def _read(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def _keys(store: ObjectStore, prefix: str = "", start_after: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix, start_after)]


async def test_put_new_stores_once_and_never_replaces(object_store: ObjectStore) -> None:
    etag = await object_store.put_new("checkpoints/1", b"first")
    assert etag and etag == (await object_store.head("checkpoints/1")).etag
    assert await object_store.put_new("checkpoints/1", b"second") is None
    assert await _read(object_store, "checkpoints/1") == b"first"
    assert await object_store.list_multipart_uploads() == []


async def test_put_new_racing_writers_leave_exactly_one(object_store: ObjectStore) -> None:
    bodies = [f"writer {i}".encode() for i in range(8)]
    results = await asyncio.gather(*(object_store.put_new("race/key", b) for b in bodies))
    stored = [i for i, etag in enumerate(results) if etag is not None]
    assert len(stored) == 1
    assert await _read(object_store, "race/key") == bodies[stored[0]]


async def test_put_new_leaves_no_temporary_file(local_store: LocalObjectStore) -> None:
    await local_store.put_new("a/b", b"x")
    await local_store.put_new("a/b", b"y")
    assert sorted(p.name for p in (local_store.root / "a").iterdir()) == ["b"]
    assert (local_store.root / "a" / "b").stat().st_mode & 0o777 == 0o600


async def test_list_after_a_key(object_store: ObjectStore) -> None:
    for key in ("c/0001", "c/0002", "c/0010", "c/x/1", "d/1", "b/9"):
        assert await object_store.put_new(key, b".")
    assert await _keys(object_store, "c/", "c/0001") == ["c/0002", "c/0010", "c/x/1"]
    assert await _keys(object_store, "c/", "c/0005") == ["c/0010", "c/x/1"]
    assert await _keys(object_store, "c/", "c/x") == ["c/x/1"]
    assert await _keys(object_store, "c/", "c/z") == []
    assert await _keys(object_store, "", "b/9") == ["c/0001", "c/0002", "c/0010", "c/x/1", "d/1"]
    assert await _keys(object_store, "c/", "a") == await _keys(object_store, "c/")
