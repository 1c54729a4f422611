"""An encrypted write (an API `PUT`) reuses a stored part's buffer for a later part: it maps
no more part buffers than it holds parts at once, and every part still holds its own bytes.
A write shorter than a part is one request, with no multipart upload."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from storage import LocalObjectStore, ObjectNotFoundError, StorageError
from vault import crypto
from vault.crypto import blobs

KiB = 1024
MiB = 1024 * KiB
DEK = bytes(range(32))
PART = 1 * MiB


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 300 * KiB):
        yield data[offset : offset + 300 * KiB]


async def round_trip(
    store: LocalObjectStore, plaintext: bytes, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Write `plaintext` with two parts in flight, check that it reads back whole, and return
    the sizes of the part buffers the write mapped."""
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    mapped: list[int] = []
    original = crypto.page_buffer

    def counted(size: int) -> memoryview:
        mapped.append(size)
        return original(size)

    monkeypatch.setattr(blobs, "page_buffer", counted)
    written = await blobs.write_encrypted(
        store,
        "objects/reused",
        chunks(plaintext),
        sealer=crypto.SegmentSealer(DEK, context),
        part_size=PART,
        concurrency=2,
    )
    assert written.sha256 == hashlib.sha256(plaintext).hexdigest()
    got = bytearray()
    async for piece in blobs.read_decrypted(
        store,
        "objects/reused",
        opened=crypto.parse_header(written.header, context, DEK),
        object_size=written.object_size,
    ):
        got += piece
    assert got == plaintext
    return mapped


async def test_a_write_reuses_the_buffers_of_stored_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plaintext = random.Random(11).randbytes(20 * PART + 12345)
    mapped = await round_trip(LocalObjectStore(tmp_path), plaintext, monkeypatch)
    # Twenty-one parts through at most three buffers: two being stored, one filling.
    assert 0 < len(mapped) <= 2 + 1


class PairedStore(LocalObjectStore):
    """Full parts are stored two at a time: each waits for the next, and both return
    together, as two parts sent at once to a real store often do."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.waiting: anyio.Event | None = None

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
    ) -> str:
        etag = await super().upload_part(key, upload_id, part_number, data)
        if len(data) == PART:
            if self.waiting is None:
                self.waiting = anyio.Event()
                await self.waiting.wait()
            else:
                self.waiting.set()
                self.waiting = None
        return etag


async def test_parts_stored_together_leave_both_buffers_for_later_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plaintext = random.Random(12).randbytes(20 * PART + 999)
    mapped = await round_trip(PairedStore(tmp_path), plaintext, monkeypatch)
    # Keeping one of the two freed buffers would map a fourth for the part after next.
    assert len(mapped) == 2 + 1


class CountingStore(LocalObjectStore):
    """Counts the writes a store is asked for."""

    def __init__(self, root: Path, *, failing: bool = False) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()
        self.failing = failing

    async def create_multipart(self, key: str) -> str:
        self.calls["create_multipart"] += 1
        return await super().create_multipart(key)

    async def put_new(self, key: str, data: bytes) -> str | None:
        self.calls["put_new"] += 1
        if self.failing:
            raise StorageError("the store went away")
        return await super().put_new(key, data)


def _plaintext_for(object_size: int) -> int:
    """The longest plaintext whose object is at most `object_size` bytes."""
    size = object_size
    while crypto.object_size(size) > object_size:
        size -= 1
    return size


@pytest.mark.parametrize(
    ("size", "requests"),
    [
        (0, {"put_new": 1}),
        (5000, {"put_new": 1}),
        # With its header and tags, one byte short of a part: still one request.
        (_plaintext_for(PART - 1), {"put_new": 1}),
        # A whole part of ciphertext, or more, goes as parts.
        (_plaintext_for(PART), {"create_multipart": 1}),
        (3 * PART, {"create_multipart": 1}),
    ],
)
async def test_a_write_under_a_part_is_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, requests: dict[str, int]
) -> None:
    store = CountingStore(tmp_path)
    assert crypto.object_size(_plaintext_for(PART)) == PART  # the edge is where it seems
    plaintext = random.Random(size).randbytes(size)
    await round_trip(store, plaintext, monkeypatch)
    assert store.calls == requests
    assert await store.list_multipart_uploads() == []


async def write_small(store: LocalObjectStore, key: str) -> None:
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    await blobs.write_encrypted(
        store, key, chunks(b"x" * 5000), sealer=crypto.SegmentSealer(DEK, context), part_size=PART
    )


async def test_a_failed_single_put_leaves_no_object(tmp_path: Path) -> None:
    store = CountingStore(tmp_path, failing=True)
    with pytest.raises(StorageError, match="went away"):
        await write_small(store, "objects/small")
    assert store.calls == {"put_new": 1}
    with pytest.raises(ObjectNotFoundError):
        await store.head("objects/small")
    assert await store.list_multipart_uploads() == []


async def test_a_write_never_replaces_an_object(tmp_path: Path) -> None:
    """Each write has a key of its own; one found taken is a fault, and what it held stays."""
    store = LocalObjectStore(tmp_path)
    assert await store.put_new("objects/taken", b"first")
    with pytest.raises(RuntimeError, match="already exists"):
        await write_small(store, "objects/taken")
    assert (await store.head("objects/taken")).size == len(b"first")
