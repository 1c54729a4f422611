"""An encrypted write (an API `PUT`) reuses a stored part's buffer for a later part: it maps
no more part buffers than it holds parts at once, and every part still holds its own bytes."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from storage import LocalObjectStore
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
