"""A download holds a store window only while it is being decrypted: no generator between the
store and the response keeps the last window (or its whole plaintext) until the consumer
comes back for more, so each one's memory goes as soon as it has been used."""

from __future__ import annotations

import sys
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from storage import ByteBudget, S3ObjectStore
from vault import crypto
from vault.crypto.stream import coalesce
from web.malloc import MMAP_THRESHOLD

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KiB = 1024
MiB = 1024 * KiB
DEK = bytes(range(32))


async def only_the_consumer_holds(window: object) -> bool:
    # The thread that fetched a window lets go of it a moment after handing it over.
    for _ in range(200):
        if sys.getrefcount(window) == 3:  # `window` here, the caller's name, the argument
            return True
        await anyio.sleep(0.005)
    return False


async def test_an_s3_read_keeps_no_window_it_has_handed_over(
    s3_bucket: tuple[S3Client, str],
) -> None:
    client, bucket = s3_bucket
    data = bytes(range(256)) * (3 * MiB // 256)
    client.put_object(Bucket=bucket, Key="handover", Body=data)
    store = S3ObjectStore(
        client=client,
        bucket=bucket,
        read_chunk_size=256 * KiB,
        read_ahead=1 * MiB,
        first_window=64 * KiB,
        budget=ByteBudget(4 * MiB),
    )
    got = bytearray()
    async for window in store.read("handover"):
        assert await only_the_consumer_holds(window), "a window is still held upstream"
        got += window
    assert got == data


async def gone(ref: weakref.ref[Tracked]) -> bool:
    for _ in range(200):
        if ref() is None:
            return True
        await anyio.sleep(0.005)
    return False


class Tracked(bytearray):
    """A ciphertext chunk whose end can be seen (bytes cannot be weakly referenced)."""


async def test_decrypting_lets_go_of_a_window_before_its_plaintext_is_sent() -> None:
    plaintext = bytes(range(256)) * (2 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    sealer = crypto.SegmentSealer(DEK, context)
    ciphertext = crypto.encrypt_object(sealer, plaintext)
    opened = crypto.parse_header(ciphertext, context, DEK)
    first, start, end = crypto.ciphertext_range(0, len(plaintext), len(ciphertext))
    chunks: list[weakref.ref[Tracked]] = []

    async def windows() -> AsyncIterator[Tracked]:
        for at in range(start, end, 512 * KiB):
            chunk = Tracked(ciphertext[at : min(at + 512 * KiB, end)])
            chunks.append(weakref.ref(chunk))
            handed = [chunk]
            del chunk
            yield handed.pop()

    got = bytearray()
    async for piece in crypto.decrypt_range(
        opened,
        windows(),
        first_index=first,
        plain_start=0,
        plain_end=len(plaintext),
        object_size=len(ciphertext),
    ):
        # Whatever this piece came from is decrypted, and gone (once the worker thread that
        # decrypted it has let go of its arguments, a moment after handing back the result).
        assert await gone(chunks[-1]), f"window {len(chunks)} is still held while it is sent"
        got += piece
    assert got == plaintext


def test_joining_frees_each_segment_once_it_is_joined() -> None:
    pieces = [bytes([i]) * (64 * KiB) for i in range(40)]
    joined = coalesce(pieces, size=1 * MiB)
    first = next(joined)
    assert len(first) == 1 * MiB
    # The first sixteen are taken out of the list as they are joined: nothing keeps them.
    assert len(pieces) == 40 - 16
    assert b"".join([first, *joined]) == b"".join(bytes([i]) * (64 * KiB) for i in range(40))
    assert pieces == []


def test_joined_pieces_stay_under_the_size_the_server_maps_afresh() -> None:
    """A piece of `MMAP_THRESHOLD` bytes or more is mapped, faulted in and unmapped anew each
    time; under it, it reuses the heap's pages."""
    sizes = [len(piece) for piece in coalesce([bytes(64 * KiB)] * 64)]
    assert sum(sizes) == 4 * MiB
    assert max(sizes) < MMAP_THRESHOLD
    assert min(sizes[:-1]) >= MMAP_THRESHOLD // 2  # still few sends per megabyte
