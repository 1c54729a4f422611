"""The per-process byte budget: many concurrent decrypting downloads from S3 over HTTP never
hold more fetched ciphertext than it allows, and still return every byte exactly."""

from __future__ import annotations

import mmap
import random
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from storage import ByteBudget, LocalObjectStore, S3ObjectStore, windows
from vault import crypto
from vault.crypto.blobs import StoredBlob, read_decrypted, write_encrypted

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KiB = 1024
MiB = 1024 * KiB
SEGMENT = 64 * KiB
DEK = bytes(range(32))


async def test_budget_waiters_are_served_in_order_and_cancellation_hands_bytes_on() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(take, "big", 80)
        await anyio.sleep(0.01)
        # 30 bytes are free, but the big request came first: no overtaking.
        assert not budget.try_acquire(30)
        tasks.start_soon(take, "small", 20)
        await anyio.sleep(0.01)
        assert order == []
        budget.release(60)
        await anyio.sleep(0.01)
        assert order == ["big", "small"]
    assert budget.in_use == 100 == budget.peak
    with anyio.move_on_after(0.05):
        await budget.acquire(1)  # cancelled while waiting: takes nothing
    budget.release(100)
    assert budget.in_use == 0
    assert budget.try_acquire(100)
    with pytest.raises(ValueError, match=r"1\.\.100"):
        budget.try_acquire(101)


def sealer() -> crypto.SegmentSealer:
    return crypto.SegmentSealer(DEK, crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()))


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 300 * KiB):
        yield data[offset : offset + 300 * KiB]


Store = S3ObjectStore | LocalObjectStore


async def store_plaintext(store: Store, key: str, data: bytes) -> StoredBlob:
    return await write_encrypted(
        store, key, chunks(data), sealer=sealer(), part_size=5 * MiB, concurrency=2
    )


async def read_all(
    store: Store, key: str, blob: StoredBlob, start: int = 0, end: int | None = None
) -> bytes:
    opened = crypto.parse_header(blob.header, crypto.Header.unpack(blob.header).context, DEK)
    pieces = []
    async for piece in read_decrypted(
        store, key, opened=opened, object_size=blob.object_size, start=start, end=end
    ):
        pieces.append(piece)
        await anyio.lowlevel.checkpoint()  # a consumer that takes its time, as a socket does
    return b"".join(pieces)


class CountedBuffer(mmap.mmap):
    """A window buffer that says when it is unmapped: as it is closed, though the object
    may live on a moment, or as it is freed."""

    unmapped: Callable[[int], None]

    def close(self) -> None:
        self.unmapped(id(self))
        super().close()


class MappedWindows:
    """The bytes mapped for window buffers: now, and at most."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._sizes: dict[int, int] = {}  # id → size, of each buffer still mapped

    def new_buffer(self, size: int) -> windows.WindowBuffer:
        buffer = CountedBuffer(-1, size, flags=mmap.MAP_PRIVATE)
        buffer.unmapped = self.unmapped
        self._sizes[id(buffer)] = size
        self.now += size
        self.most = max(self.most, self.now)
        weakref.finalize(buffer, self.unmapped, id(buffer))
        return buffer

    def unmapped(self, key: int) -> None:
        self.now -= self._sizes.pop(key, 0)


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> MappedWindows:
    tracker = MappedWindows()
    monkeypatch.setattr(windows, "new_buffer", tracker.new_buffer)
    return tracker


@pytest.fixture
def budgeted(s3_bucket: tuple[S3Client, str]) -> tuple[S3ObjectStore, ByteBudget]:
    client, bucket = s3_bucket
    # Windows of 256 KiB, up to 1 MiB per read, and 2 MiB for all reads together: 20 reads
    # would want 20 MiB ahead, so most of them must wait for their share.
    budget = ByteBudget(2 * MiB)
    store = S3ObjectStore(
        client=client,
        bucket=bucket,
        part_concurrency=4,
        read_chunk_size=256 * KiB,
        read_ahead=1 * MiB,
        first_window=64 * KiB,
        budget=budget,
    )
    return store, budget


async def test_twenty_concurrent_downloads_stay_within_the_process_budget(
    budgeted: tuple[S3ObjectStore, ByteBudget], mapped: MappedWindows
) -> None:
    store, budget = budgeted
    rng = random.Random(7)
    originals = [rng.randbytes(3 * MiB + rng.randrange(SEGMENT)) for _ in range(20)]
    blobs = [await store_plaintext(store, f"doc-{i}", data) for i, data in enumerate(originals)]
    results: dict[int, bytes] = {}
    most = 0

    async def download(index: int) -> None:
        results[index] = await read_all(store, f"doc-{index}", blobs[index])

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, budget.in_use)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        async with anyio.create_task_group() as downloads:
            for index in range(20):
                downloads.start_soon(download, index)
        tasks.cancel_scope.cancel()
    assert all(results[i] == originals[i] for i in range(20))
    assert budget.peak <= budget.capacity
    # The bound was reached, so it really held the downloads back; and all was given back.
    assert most > budget.capacity // 2
    assert budget.in_use == 0
    # A buffer is its window's size, so the budget bounds the memory the windows map.
    assert mapped.most <= budget.capacity


async def test_range_across_segment_edges_is_exact_under_the_budget(
    budgeted: tuple[S3ObjectStore, ByteBudget],
) -> None:
    store, budget = budgeted
    data = random.Random(3).randbytes(2 * MiB + 123)
    blob = await store_plaintext(store, "ranged", data)
    for start, end in [
        (SEGMENT - 1, SEGMENT + 1),
        (3 * SEGMENT - 10, 17 * SEGMENT + 10),  # across many windows of 256 KiB
        (0, len(data)),
        (len(data) - 5, len(data)),
        (5 * SEGMENT, 6 * SEGMENT),
    ]:
        assert await read_all(store, "ranged", blob, start, end) == data[start:end]
    assert budget.in_use == 0
    assert budget.peak <= budget.capacity


async def test_twenty_concurrent_local_downloads_stay_within_the_process_budget(
    tmp_path: Path, mapped: MappedWindows
) -> None:
    """The local store's windows take their size from the same kind of budget: twenty
    downloads at once, each reading into a buffer it reuses, hold no more than it, and a
    download that waits for its share holds no idle buffer meanwhile."""
    budget = ByteBudget(2 * MiB)
    window = 256 * KiB
    store = LocalObjectStore(tmp_path, read_chunk_size=window, budget=budget)
    rng = random.Random(11)
    originals = [rng.randbytes(3 * MiB + rng.randrange(SEGMENT)) for _ in range(20)]
    blobs = [await store_plaintext(store, f"doc-{i}", data) for i, data in enumerate(originals)]
    results: dict[int, bytes] = {}

    async def download(index: int) -> None:
        results[index] = await read_all(store, f"doc-{index}", blobs[index])

    async with anyio.create_task_group() as downloads:
        for index in range(20):
            downloads.start_soon(download, index)
    assert all(results[i] == originals[i] for i in range(20))
    assert budget.peak == budget.capacity  # reached, so it held the downloads back
    assert budget.in_use == 0
    # Only windows with their share are in memory: twenty downloads that kept their
    # buffers while waiting would hold twenty windows' worth.
    assert mapped.most <= budget.capacity
