"""The S3 store's windowed read: not part of the store contract, but what makes S3 reads
fast and bounded. Consecutive windows, several GETs at once, yielded in order; at most
`read_ahead` bytes held per read, and, once the consumer has had to wait for the store, one
more window asked for whose bytes wait in the connection until some are free."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from storage import ByteBudget, S3ObjectStore
from tests.fixtures.s3 import s3_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class GetCounter:
    """Counts GetObject calls as botocore makes them, slowing each so they overlap."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.started = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def before(self, **kwargs: Any) -> None:
        with self.lock:
            self.started += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)

    def after(self, **kwargs: Any) -> None:
        with self.lock:
            self.in_flight -= 1


@pytest.fixture
def s3_client_counting_gets(
    request: pytest.FixtureRequest, s3_bucket: tuple[S3Client, str]
) -> Iterator[tuple[S3Client, GetCounter]]:
    client = s3_endpoint(request).client()
    counter = GetCounter(delay=0.02)
    client.meta.events.register("before-call.s3.GetObject", counter.before)
    client.meta.events.register("after-call.s3.GetObject", counter.after)
    try:
        yield client, counter
    finally:
        client.close()


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("s3-read")]


async def no_reader_threads_left() -> None:
    """Wait for the reader threads to end, as they do once their last GET is done."""
    for _ in range(250):
        if not reader_threads():
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"threads still running: {reader_threads()}")


WINDOW = 256 * 1024


@pytest.fixture
def budget() -> ByteBudget:
    """The windowed store's, as big as a store makes its own (four reads' `read_ahead`)."""
    return ByteBudget(4 * 3 * WINDOW)


@pytest.fixture
async def windowed(
    s3_bucket: tuple[S3Client, str],
    s3_client_counting_gets: tuple[S3Client, GetCounter],
    budget: ByteBudget,
) -> tuple[S3ObjectStore, GetCounter, bytes]:
    raw, bucket = s3_bucket
    client, counter = s3_client_counting_gets
    store = S3ObjectStore(
        client=client,
        bucket=bucket,
        part_concurrency=3,
        read_chunk_size=WINDOW,
        read_ahead=3 * WINDOW,
        first_window=WINDOW,
        budget=budget,
    )
    data = random.Random(5).randbytes(12 * WINDOW + 17)
    raw.put_object(Bucket=bucket, Key="objects/windowed", Body=data)
    return store, counter, data


async def test_s3_read_fetches_windows_concurrently_and_yields_them_in_order(
    windowed: tuple[S3ObjectStore, GetCounter, bytes],
) -> None:
    store, counter, data = windowed
    pieces: list[bytes | memoryview] = []
    async for piece in store.read("objects/windowed", 100):
        pieces.append(piece)
        # Memory stays bounded: never more than `part_concurrency` windows ahead.
        assert counter.started <= len(pieces) + 3
        await anyio.sleep(0.005)
    assert b"".join(pieces) == data[100:]
    assert [len(p) for p in pieces[:-1]] == [WINDOW] * (len(pieces) - 1)
    assert len(pieces) == -(-(len(data) - 100) // WINDOW)
    # Three windows' bytes and, once the consumer has waited for the store, one more asked
    # for ahead of them.
    assert counter.most_in_flight == 3 + 1
    await no_reader_threads_left()


async def test_s3_read_closed_early_stops_fetching(
    windowed: tuple[S3ObjectStore, GetCounter, bytes],
) -> None:
    store, counter, data = windowed
    counter.delay = 0.1
    async with contextlib.aclosing(store.read("objects/windowed")) as reader:
        assert await anext(reader) == data[:WINDOW]
    started = counter.started
    await no_reader_threads_left()
    assert counter.started == started <= 1 + 3
    assert counter.in_flight == 0


async def test_s3_read_cancelled_mid_way_is_prompt(
    windowed: tuple[S3ObjectStore, GetCounter, bytes],
) -> None:
    store, counter, _ = windowed
    # Each GET takes 2 s; a cancelled read must not wait for the one in flight. The margin
    # between 1 s and 2 s absorbs a busy machine without letting a waiting read pass.
    counter.delay = 2.0
    started = time.monotonic()
    with anyio.move_on_after(0.1):
        async with contextlib.aclosing(store.read("objects/windowed")) as reader:
            async for _ in reader:
                pass
    assert time.monotonic() - started < 1.0
    await no_reader_threads_left()


async def test_s3_read_abandoned_without_closing_is_finalised_quietly(
    windowed: tuple[S3ObjectStore, GetCounter, bytes],
) -> None:
    store, _, data = windowed
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: problems.append(context))
    try:
        reader = store.read("objects/windowed")
        assert await anext(reader) == data[:WINDOW]
        del reader
        gc.collect()
        await no_reader_threads_left()
        await anyio.sleep(0.05)
    finally:
        loop.set_exception_handler(previous)
    assert problems == []


async def test_s3_read_reuses_a_window_buffer_once_the_consumer_lets_go(
    windowed: tuple[S3ObjectStore, GetCounter, bytes],
) -> None:
    store, _, data = windowed
    digest, buffers = hashlib.sha256(), []
    async for piece in store.read("objects/windowed"):
        assert isinstance(piece, memoryview)
        digest.update(piece)
        buffers.append(piece.obj)  # the buffer, not a view of it: it may be reused
        del piece
    assert digest.digest() == hashlib.sha256(data).digest()
    # Thirteen windows through at most four buffers: three in flight and one handed out.
    assert len(buffers) == 13
    assert len({id(buffer) for buffer in buffers}) <= 4


async def test_a_consumer_that_waits_for_the_store_has_one_more_window_asked_for(
    windowed: tuple[S3ObjectStore, GetCounter, bytes], budget: ByteBudget
) -> None:
    """The store starts on the window after those `read_ahead` holds; its bytes wait in the
    connection, not in the read's buffers, until some are free."""
    store, counter, data = windowed
    ahead: list[int] = []
    got = bytearray()
    async for piece in store.read("objects/windowed"):
        # The window handed out and two more hold bytes; a third is asked for ahead.
        ahead.append(counter.started - len(ahead) - 1)
        got += piece
    assert got == data
    assert max(ahead) == 3
    assert budget.peak <= 3 * WINDOW
    assert budget.in_use == 0
    await no_reader_threads_left()


async def test_a_consumer_that_never_waits_has_nothing_asked_for_ahead(
    windowed: tuple[S3ObjectStore, GetCounter, bytes], budget: ByteBudget
) -> None:
    """A slow consumer (a slow client) leaves no connection idle, waiting for bytes to free."""
    store, counter, data = windowed
    counter.delay = 0
    ahead: list[int] = []
    got = bytearray()
    async for piece in store.read("objects/windowed"):
        ahead.append(counter.started - len(ahead) - 1)
        got += piece
        await anyio.sleep(0.1)  # every GET is done long before the consumer comes back
    assert got == data
    assert max(ahead) == 2
    assert budget.peak <= 3 * WINDOW
    await no_reader_threads_left()
