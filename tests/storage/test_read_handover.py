"""A download holds a store window only while its plaintext is decrypted and sent, a piece at
a time: no generator between the store and the response keeps the last window (or its whole
plaintext) until the consumer comes back for more, so each one's memory goes as soon as it
has been used, and the store may reuse its buffer."""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import sys
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from botocore.response import StreamingBody

from storage import ByteBudget, LocalObjectStore, S3ObjectStore, StorageError, local, s3_reads
from storage.windows import WindowBuffer
from vault import crypto
from vault.crypto import blobs, ranges
from vault.crypto.ranges import KEPT_PIECES, SEND_SIZE, SPARE_PIECES, coalesce
from vault.errors import IntegrityError
from web.malloc import MMAP_THRESHOLD

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KiB = 1024
MiB = 1024 * KiB
DEK = bytes(range(32))


async def only_the_consumer_holds(window: object) -> bool:
    # The thread that fetched a window lets go of it a moment after handing it over.
    for _ in range(1000):
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


class Tracked(bytearray):
    """A ciphertext chunk whose end can be seen (bytes cannot be weakly referenced)."""


async def test_decrypting_holds_one_window_and_a_piece_of_its_plaintext_at_a_time() -> None:
    plaintext = bytes(range(256)) * (8 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    sealer = crypto.SegmentSealer(DEK, context)
    ciphertext = crypto.encrypt_object(sealer, plaintext)
    opened = crypto.parse_header(ciphertext, context, DEK)
    first, start, end = crypto.ciphertext_range(0, len(plaintext), len(ciphertext))
    chunks: list[weakref.ref[Tracked]] = []

    async def windows() -> AsyncIterator[Tracked]:
        for at in range(start, end, 2 * MiB):
            chunk = Tracked(ciphertext[at : min(at + 2 * MiB, end)])
            chunks.append(weakref.ref(chunk))
            handed = [chunk]
            del chunk
            yield handed.pop()

    got, sizes = bytearray(), []
    async for piece in crypto.decrypt_range(
        opened,
        windows(),
        first_index=first,
        plain_start=0,
        plain_end=len(plaintext),
        object_size=len(ciphertext),
    ):
        # The window being decrypted, and no earlier one: each is let go of once its last
        # piece is out, so a store may reuse its buffer for the next window at once.
        held = [number for number, ref in enumerate(chunks) if ref() is not None]
        assert set(held) <= {len(chunks) - 1}, f"windows {held} held at window {len(chunks) - 1}"
        sizes.append(len(piece))
        got += piece
    assert got == plaintext
    assert all(ref() is None for ref in chunks)
    # Its plaintext is never whole: a piece at a time, each under the size the server's
    # allocator maps afresh.
    assert len(sizes) > len(chunks)
    assert max(sizes) <= SEND_SIZE < MMAP_THRESHOLD


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


async def test_a_decrypted_s3_read_reuses_its_window_buffers(
    s3_bucket: tuple[S3Client, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new window buffer is faulted in page by page; a download that reuses them
    pays that once, not once per window."""
    client, bucket = s3_bucket
    plaintext = bytes(range(256)) * (6 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    ciphertext = crypto.encrypt_object(crypto.SegmentSealer(DEK, context), plaintext)
    client.put_object(Bucket=bucket, Key="reused", Body=ciphertext)
    store = S3ObjectStore(
        client=client,
        bucket=bucket,
        read_chunk_size=256 * KiB,  # twenty-four windows, each decrypted in a worker thread
        read_ahead=1 * MiB,
        first_window=256 * KiB,
    )
    mapped: list[int] = []
    original = mmap.mmap

    def counted(fileno: int, length: int, **options: int) -> mmap.mmap:
        mapped.append(length)
        return original(fileno, length, **options)

    monkeypatch.setattr(mmap, "mmap", counted)  # what storage.s3_reads maps windows with
    monkeypatch.setattr(ranges, "_spare", [])  # none left by other tests
    got = bytearray()
    async for piece in blobs.read_decrypted(
        store,
        "reused",
        opened=crypto.parse_header(ciphertext, context, DEK),
        object_size=len(ciphertext),
    ):
        got += piece
    assert got == plaintext
    windows = [length for length in mapped if length <= 256 * KiB]  # the last is shorter
    pieces = [length for length in mapped if length == SEND_SIZE]
    # Four windows in flight and one being decrypted, not one buffer per window; and the
    # pieces decrypted into buffers reused the same way, window after window.
    assert 0 < len(windows) <= 5 and 0 < len(pieces) <= KEPT_PIECES
    assert len(windows) + len(pieces) == len(mapped)


def test_a_window_is_decrypted_a_piece_at_a_time() -> None:
    """Its plaintext is never whole: a piece is decrypted only when asked for, so a damaged
    segment late in a window fails that window's later piece, not its first."""
    plaintext = bytes(range(256)) * (2 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    ciphertext = bytearray(crypto.encrypt_object(crypto.SegmentSealer(DEK, context), plaintext))
    opened = crypto.parse_header(ciphertext, context, DEK)
    segment = opened.segment_size + crypto.TAG_SIZE
    ciphertext[crypto.HEADER_SIZE + 20 * segment + 5] ^= 1  # segment 20, in the second piece
    decryptor = crypto.RangeDecryptor(
        opened, plain_start=0, plain_end=len(plaintext), object_size=len(ciphertext)
    )

    pieces = decryptor.pieces([memoryview(ciphertext)[crypto.HEADER_SIZE :]])

    assert bytes(next(pieces)) == plaintext[:SEND_SIZE]
    with pytest.raises(IntegrityError, match="segment 20"):
        next(pieces)


def test_a_piece_still_viewed_is_never_written_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces go into a few buffers, each reused only once no view of it is left: a
    consumer done with each piece gets them all from one buffer, one that keeps every piece
    finds each still holding its own plaintext, also after other windows have been
    decrypted."""
    monkeypatch.setattr(ranges, "_spare", [])
    plaintext = bytes(range(256)) * (8 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    ciphertext = crypto.encrypt_object(crypto.SegmentSealer(DEK, context), plaintext)
    opened = crypto.parse_header(ciphertext, context, DEK)

    def decryptor() -> crypto.RangeDecryptor:
        return crypto.RangeDecryptor(
            opened, plain_start=0, plain_end=len(plaintext), object_size=len(ciphertext)
        )

    window = memoryview(ciphertext)[crypto.HEADER_SIZE :]
    dropped, buffers = decryptor(), {}
    got = bytearray()
    for piece in dropped.pieces([window]):
        buffers[id(piece.obj)] = piece.obj  # the buffer itself kept, so no id is reused
        got += piece
        del piece
    assert got == plaintext and len(buffers) == 1

    kept = list(decryptor().pieces([window]))
    assert len(kept) == -(-len(plaintext) // SEND_SIZE) > KEPT_PIECES
    assert b"".join(kept) == plaintext
    # A window done gives its buffers to the next window of any download: none of a
    # piece still viewed is written over.
    assert 0 < len(ranges._spare) <= SPARE_PIECES
    again = decryptor()
    assert b"".join(bytes(piece) for piece in again.pieces([window])) == plaintext
    assert b"".join(kept) == plaintext


def test_a_window_decrypted_into_a_reused_buffer_is_the_same_plaintext() -> None:
    """A consumer done with each piece can have every piece decrypted into its one buffer:
    the same plaintext, cut range included, and nothing allocated per piece."""
    plaintext = bytes(range(256)) * (2 * MiB // 256)
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    ciphertext = crypto.encrypt_object(crypto.SegmentSealer(DEK, context), plaintext)
    opened = crypto.parse_header(ciphertext, context, DEK)
    start, end = 1000, len(plaintext) - 3000
    _, ct_start, ct_end = crypto.ciphertext_range(start, end, len(ciphertext))
    decryptor = crypto.RangeDecryptor(
        opened, plain_start=start, plain_end=end, object_size=len(ciphertext)
    )
    scratch = bytearray(3 * opened.segment_size)
    got = bytearray()
    for piece in decryptor.pieces([memoryview(ciphertext)[ct_start:ct_end]], reuse=scratch):
        assert piece.obj is scratch
        got += piece
    decryptor.finish()
    assert got == plaintext[start:end]
    with pytest.raises(ValueError, match="a whole segment"):
        next(decryptor.pieces([b""], reuse=bytearray(opened.segment_size - 1)))


async def test_a_local_read_reuses_its_two_buffers_unless_a_window_is_kept(
    tmp_path: Path,
) -> None:
    """The next window is read into one buffer while the consumer uses the other."""
    store = LocalObjectStore(tmp_path, read_chunk_size=256 * KiB)
    data = bytes(range(256)) * (2 * MiB // 256)
    upload = await store.create_multipart("objects/local")
    await store.complete_multipart(
        "objects/local", upload, [(1, await store.upload_part("objects/local", upload, 1, data))]
    )
    buffers = []
    got = bytearray()
    async for window in store.read("objects/local"):
        assert isinstance(window, memoryview)
        buffers.append(window.obj)
        got += window
        del window
    assert got == data
    assert len(buffers) == 8
    assert len({id(b) for b in buffers}) == 2
    # A consumer that keeps its windows keeps their bytes too: none is overwritten.
    kept = [window async for window in store.read("objects/local")]
    assert b"".join(kept) == data


async def test_a_local_read_reads_the_next_window_while_the_consumer_uses_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a window from the disk overlaps the decrypting and sending of the one before,
    on another core; a read that waited for its consumer to come back did neither at once.
    With a budget of one window there is no room for the next, and none is read ahead."""
    data = bytes(range(256)) * (1 * MiB // 256)
    reads: list[int] = []
    read_window = local._read_window

    def counted(path: Path, lo: int, hi: int, into: Callable[[], WindowBuffer | None]) -> int:
        count = read_window(path, lo, hi, into)
        reads.append(count)
        return count

    monkeypatch.setattr(local, "_read_window", counted)

    async def reads_while_the_first_is_held(store: LocalObjectStore, *, patience: int) -> int:
        assert await store.put_new("ahead", data)
        reads.clear()
        windows = store.read("ahead")
        async with contextlib.aclosing(windows):
            first = await anext(windows)
            for _ in range(patience):
                if len(reads) > 1:
                    break
                await anyio.sleep(0.01)
            seen = len(reads)
            assert bytes(first) == data[: 256 * KiB]
            del first
            assert b"".join([bytes(w) async for w in windows]) == data[256 * KiB :]
        return seen

    (tmp_path / "roomy").mkdir()
    (tmp_path / "tight").mkdir()
    roomy = LocalObjectStore(tmp_path / "roomy", read_chunk_size=256 * KiB)
    # Patience (in 10 ms steps) for a busy machine where a read-ahead is expected; where none
    # is, long enough that one would have been seen.
    assert await reads_while_the_first_is_held(roomy, patience=500) == 2
    budget = ByteBudget(256 * KiB)
    tight = LocalObjectStore(tmp_path / "tight", read_chunk_size=256 * KiB, budget=budget)
    assert await reads_while_the_first_is_held(tight, patience=50) == 1
    assert budget.in_use == 0

    # A read given up while its next window is being read closes its file once that read
    # is over, without waiting for it.
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    windows = roomy.read("ahead")
    await anext(windows)
    await windows.aclose()
    for _ in range(500):
        if open_files() <= before:
            break
        await anyio.sleep(0.01)
    assert open_files() <= before


def test_a_body_without_an_http_response_underneath_is_read_and_copied() -> None:
    """Where botocore's body has no `http.client` response to read into a buffer from (another
    urllib3), the window is read as bytes and copied in; a body longer than the buffer is an
    error, not a silent cut."""
    data = bytes(range(256)) * 64
    buffer = bytearray(len(data) + 10)
    body = StreamingBody(io.BytesIO(data), len(data))
    assert s3_reads._read_into(body, memoryview(buffer)) == len(data)
    assert buffer[: len(data)] == data
    with pytest.raises(StorageError, match="bytes for a range of 10"):
        s3_reads._read_into(StreamingBody(io.BytesIO(data), len(data)), memoryview(buffer)[:10])
