"""What every object store promises the vault: one suite, run against each backend.

S3 refuses to complete an upload whose non-last parts are under 5 MiB (EntityTooSmall), so
multi-part objects here use 5 MiB parts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import ObjectNotFoundError, StorageError
from vault.store import ObjectStore

MiB = 1024 * 1024
PART = 5 * MiB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def write(store: ObjectStore, key: str, parts: Sequence[bytes]) -> None:
    upload_id = await store.create_multipart(key)
    etags = [
        (number, await store.upload_part(key, upload_id, number, data))
        for number, data in enumerate(parts, start=1)
    ]
    await store.complete_multipart(key, upload_id, etags)


async def read(store: ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([piece async for piece in store.read(key, start, end)])


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return sorted([info.key async for info in store.list(prefix)])


@pytest.fixture
async def big_object(object_store: ObjectStore) -> tuple[str, bytes]:
    """Three parts, the last one short, larger than one S3 read window (8 MiB)."""
    parts = [payload(PART, 1), payload(PART, 2), payload(1234, 3)]
    await write(object_store, "objects/big", parts)
    return "objects/big", b"".join(parts)


async def test_multipart_write_then_head_and_read(
    object_store: ObjectStore, big_object: tuple[str, bytes]
) -> None:
    key, data = big_object
    info = await object_store.head(key)
    assert info.key == key
    assert info.size == len(data)
    assert info.last_modified.tzinfo is not None
    assert abs(datetime.now(UTC) - info.last_modified) < timedelta(minutes=5)
    assert await read(object_store, key) == data
    assert await object_store.list_multipart_uploads() == []


async def test_reuploading_a_part_replaces_it(object_store: ObjectStore) -> None:
    key = "objects/replaced"
    first, second, tail = payload(PART, 1), payload(PART, 2), b"tail"
    upload_id = await object_store.create_multipart(key)
    await object_store.upload_part(key, upload_id, 1, first)
    etag = await object_store.upload_part(key, upload_id, 1, second)
    tail_etag = await object_store.upload_part(key, upload_id, 2, tail)
    parts = await object_store.list_parts(key, upload_id)
    assert [(p.part_number, p.etag, p.size) for p in parts] == [
        (1, etag, PART),
        (2, tail_etag, len(tail)),
    ]
    await object_store.complete_multipart(key, upload_id, [(1, etag), (2, tail_etag)])
    assert await read(object_store, key) == second + tail


async def test_list_parts_in_part_number_order(object_store: ObjectStore) -> None:
    key = "objects/parts"
    upload_id = await object_store.create_multipart(key)
    assert await object_store.list_parts(key, upload_id) == []
    etag3 = await object_store.upload_part(key, upload_id, 3, b"three")
    etag1 = await object_store.upload_part(key, upload_id, 1, b"one")
    parts = await object_store.list_parts(key, upload_id)
    assert [(p.part_number, p.etag, p.size) for p in parts] == [(1, etag1, 3), (3, etag3, 5)]
    await object_store.abort_multipart(key, upload_id)


async def test_abort_leaves_nothing(object_store: ObjectStore) -> None:
    key = "objects/aborted"
    upload_id = await object_store.create_multipart(key)
    await object_store.upload_part(key, upload_id, 1, b"secret ciphertext")
    [pending] = await object_store.list_multipart_uploads()
    assert (pending.key, pending.upload_id) == (key, upload_id)
    # Only loosely: moto reports a fixed date in 2010 for every upload.
    assert pending.initiated.tzinfo is not None
    assert pending.initiated < datetime.now(UTC) + timedelta(minutes=5)

    await object_store.abort_multipart(key, upload_id)

    assert await object_store.list_multipart_uploads() == []
    assert await keys(object_store) == []
    with pytest.raises(ObjectNotFoundError):
        await object_store.head(key)
    with pytest.raises(ObjectNotFoundError):
        await object_store.list_parts(key, upload_id)
    # (Completing it is not tried: moto answers that with a 500 instead of NoSuchUpload.)
    # Aborting again, or an upload that never existed, is not an error.
    await object_store.abort_multipart(key, upload_id)
    await object_store.abort_multipart(key, "0" * 32)


async def test_object_invisible_until_complete(object_store: ObjectStore) -> None:
    key = "objects/atomic"
    await write(object_store, key, [b"old version"])
    upload_id = await object_store.create_multipart(key)
    etags = [
        (1, await object_store.upload_part(key, upload_id, 1, payload(PART, 7))),
        (2, await object_store.upload_part(key, upload_id, 2, b"end")),
    ]
    assert await read(object_store, key) == b"old version"
    assert (await object_store.head(key)).size == len(b"old version")

    fresh = "objects/fresh"
    fresh_id = await object_store.create_multipart(fresh)
    fresh_etag = await object_store.upload_part(fresh, fresh_id, 1, b"new")
    assert await keys(object_store) == [key]
    with pytest.raises(ObjectNotFoundError):
        await object_store.head(fresh)

    await object_store.complete_multipart(key, upload_id, etags)
    await object_store.complete_multipart(fresh, fresh_id, [(1, fresh_etag)])
    assert await read(object_store, key) == payload(PART, 7) + b"end"
    assert await read(object_store, fresh) == b"new"
    assert await keys(object_store) == [key, fresh]


async def test_complete_rejects_a_wrong_etag(object_store: ObjectStore) -> None:
    key = "objects/wrong-etag"
    upload_id = await object_store.create_multipart(key)
    await object_store.upload_part(key, upload_id, 1, b"data")
    with pytest.raises(StorageError):
        await object_store.complete_multipart(key, upload_id, [(1, '"' + "0" * 32 + '"')])
    with pytest.raises(ObjectNotFoundError):
        await object_store.head(key)
    await object_store.abort_multipart(key, upload_id)


async def test_ranged_reads(object_store: ObjectStore, big_object: tuple[str, bytes]) -> None:
    key, data = big_object
    size = len(data)
    window = 8 * MiB  # S3 read window: ranges crossing it are fetched in pieces
    ranges: list[tuple[int, int | None]] = [
        (0, 100),  # prefix
        (size - 100, None),  # suffix
        (size - 100, size),
        (1000, 2000),  # middle
        (PART + 17, PART + 18),  # single byte
        (size - 1, None),  # last byte
        (0, None),  # whole
        (0, size),
        (size, None),  # start == size: empty
        (size, size),
        (300, 300),  # empty range
        (PART - 10, PART + 10),  # across a part boundary
        (PART - 1, 2 * PART + 1),  # across two
        (window - 5, window + 5),  # across a read window
        (1, size - 1),
        (size - 10, size + 1000),  # past the end: clamped
    ]
    for start, end in ranges:
        expected = data[start:end]
        assert await read(object_store, key, start, end) == expected, (start, end)


async def test_read_yields_bounded_pieces(
    object_store: ObjectStore, big_object: tuple[str, bytes]
) -> None:
    key, data = big_object
    pieces = [piece async for piece in object_store.read(key)]
    assert b"".join(pieces) == data
    assert len(pieces) > 1
    assert max(len(piece) for piece in pieces) <= 8 * MiB


async def test_closing_a_read_early_is_clean(
    object_store: ObjectStore, big_object: tuple[str, bytes]
) -> None:
    key, data = big_object
    reader = object_store.read(key, 1)
    first = await anext(reader)
    assert first == data[1 : 1 + len(first)]
    await reader.aclose()  # type: ignore[attr-defined]
    assert await read(object_store, key, 5, 10) == data[5:10]


async def test_bad_range_is_rejected(
    object_store: ObjectStore, big_object: tuple[str, bytes]
) -> None:
    key, _ = big_object
    with pytest.raises(ValueError, match="start"):
        await read(object_store, key, -1)
    with pytest.raises(ValueError, match="end"):
        await read(object_store, key, 10, 5)


async def test_missing_objects(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        await read(object_store, "objects/missing")
    with pytest.raises(ObjectNotFoundError):
        await read(object_store, "objects/missing", 0, 10)
    with pytest.raises(ObjectNotFoundError):
        await read(object_store, "objects/missing", 5, 5)
    with pytest.raises(ObjectNotFoundError):
        await object_store.head("objects/missing")


async def test_a_prefix_of_keys_is_not_an_object(object_store: ObjectStore) -> None:
    await write(object_store, "objects/dir/file", [b"x"])
    with pytest.raises(ObjectNotFoundError):
        await object_store.head("objects/dir")
    with pytest.raises(ObjectNotFoundError):
        await read(object_store, "objects/dir")
    await object_store.delete("objects/dir")
    assert await read(object_store, "objects/dir/file") == b"x"


async def test_delete_is_idempotent(object_store: ObjectStore) -> None:
    key = "objects/deleted"
    await write(object_store, key, [b"bytes"])
    await object_store.delete(key)
    with pytest.raises(ObjectNotFoundError):
        await object_store.head(key)
    assert await keys(object_store) == []
    await object_store.delete(key)
    await object_store.delete("objects/never-existed")


async def test_list_by_prefix(object_store: ObjectStore) -> None:
    stored = {
        "a/1": b"1",
        "a/2": b"22",
        "a/b/3": b"333",
        "a-b": b"-",
        "ab/4": b"4444",
        "b/5": b"",
    }
    for key, data in stored.items():
        await write(object_store, key, [data])
    pending_id = await object_store.create_multipart("a/pending")
    await object_store.upload_part("a/pending", pending_id, 1, b"not an object yet")

    # In key order, as S3 lists: by UTF-8 bytes, so "a-b" comes before "a/1".
    assert [info.key async for info in object_store.list()] == sorted(
        stored, key=lambda k: k.encode()
    )
    assert await keys(object_store, "a/") == ["a/1", "a/2", "a/b/3"]
    assert await keys(object_store, "a") == ["a-b", "a/1", "a/2", "a/b/3", "ab/4"]
    assert await keys(object_store, "a/b") == ["a/b/3"]
    assert await keys(object_store, "a/b/3") == ["a/b/3"]
    assert await keys(object_store, "b/5/") == []
    assert await keys(object_store, "c") == []
    assert await keys(object_store, "../") == []
    sizes = {info.key: info.size async for info in object_store.list()}
    assert sizes == {key: len(data) for key, data in stored.items()}

    assert [u.key for u in await object_store.list_multipart_uploads("a/")] == ["a/pending"]
    assert await object_store.list_multipart_uploads("b") == []


@pytest.mark.parametrize(
    "key",
    [
        "objects/with space/and more spaces",
        "objects/Ünïcödé ✓/résumé 2024.pdf",
        "objects/日本語/ファイル",
        "objects/emoji 😀/x",
        "objects/punctuation !$&'()*+,;=@[]~%20",
    ],
)
async def test_unusual_keys_round_trip(object_store: ObjectStore, key: str) -> None:
    await write(object_store, key, [key.encode()])
    assert (await object_store.head(key)).size == len(key.encode())
    assert await read(object_store, key) == key.encode()
    assert await keys(object_store, "objects/") == [key]
    await object_store.delete(key)
    assert await keys(object_store) == []


async def test_zero_byte_object(object_store: ObjectStore) -> None:
    key = "objects/empty"
    await write(object_store, key, [b""])
    assert (await object_store.head(key)).size == 0
    assert await read(object_store, key) == b""
    assert await read(object_store, key, 0, 10) == b""
    assert [(i.key, i.size) async for i in object_store.list()] == [(key, 0)]


async def test_check_passes(object_store: ObjectStore) -> None:
    await object_store.check()


@pytest.fixture
async def ranged_object(object_store: ObjectStore) -> tuple[str, bytes]:
    parts = [payload(PART, 11), payload(3 * MiB + 5, 12)]
    await write(object_store, "objects/ranged", parts)
    return "objects/ranged", b"".join(parts)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bounds=st.tuples(st.integers(0, 8 * MiB + 10), st.integers(0, 8 * MiB + 10)))
async def test_random_ranges(
    object_store: ObjectStore, ranged_object: tuple[str, bytes], bounds: tuple[int, int]
) -> None:
    # One object serves every example: the fixtures run once per backend, not per example.
    key, data = ranged_object
    start, end = sorted(bounds)
    assert await read(object_store, key, start, end) == data[start:end]
    assert await read(object_store, key, end) == data[end:]
