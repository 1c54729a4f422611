"""Ranged reads of CXP1 objects: the ciphertext of `ciphertext_range(...)`, in chunks of any
size, back into exactly the plaintext asked for, each segment authenticated whole before
any of its bytes go out; and the pieces that plaintext is sent in.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from vault.crypto.buffers import unviewed
from vault.crypto.segments import (
    HEADER_SIZE,
    TAG_SIZE,
    Chunk,
    OpenedHeader,
    ciphertext_range,
    segment_count,
)
from vault.errors import IntegrityError

# A chunk this large is decrypted straight into send pieces; a smaller one (a header, a
# short range) is decrypted whole and its segments joined.
PIECES_FROM = 256 * 1024
# Under the 1 MiB from which the server's allocator maps each block afresh (web/malloc.py):
# a joined piece of 1 MiB took 257 page faults to fill and an munmap to free, a fifth of a
# download's CPU; one of 960 KiB reuses the heap's pages.
SEND_SIZE = 960 * 1024
# Buffers a window's pieces go into: one being filled, and those the response may still be
# writing out (the transport holds a piece until the socket has taken it all).
KEPT_PIECES = 3
# Buffers of finished windows kept for the next window of any download, so that a download
# holds none while it waits for the store, yet its next window finds its pages in place.
SPARE_PIECES = 4
_spare: list[mmap.mmap] = []
_spare_lock = threading.Lock()  # downloads decrypt on event loops, which may be several


class RangeDecryptor:
    """Turns the ciphertext of `ciphertext_range(...)`, in chunks of any size, into plaintext.

    Each segment is authenticated whole before any of its bytes are returned.
    """

    def __init__(
        self, opened: OpenedHeader, *, plain_start: int, plain_end: int, object_size: int
    ) -> None:
        shift = opened.header.segment_shift
        self._opened = opened
        self._count = segment_count(object_size, shift)
        self._object_size = object_size
        self.first_index, ct_start, ct_end = ciphertext_range(
            plain_start, plain_end, object_size, shift
        )
        self._start, self._end = plain_start, plain_end
        self._index = self.first_index
        self._left = ct_end - ct_start  # ciphertext bytes still expected
        self._held: list[Chunk] = []
        self._held_size = 0

    def _unit(self) -> int:
        # Ciphertext length of the segment at self._index (only the object's last is short).
        if self._index < self._count - 1:
            return self._opened.segment_size + TAG_SIZE
        return (
            self._object_size - HEADER_SIZE - self._index * (self._opened.segment_size + TAG_SIZE)
        )

    def _bounds(self, plain_size: int) -> tuple[int, int]:
        # The part of the segment at self._index that the range wants.
        base = self._index * self._opened.segment_size
        return max(self._start - base, 0), min(self._end - base, plain_size)

    def _open(self, ciphertext: Chunk) -> bytes:
        index = self._index
        return self._opened.open_segment(index, ciphertext, last=index == self._count - 1)

    def _complete(self, chunk: Chunk) -> Iterator[Chunk]:
        """The ciphertext of each segment `chunk` completes, in order; the rest is held.

        The caller opens each one (advancing `self._index`) before asking for the next,
        whose length depends on its index.
        """
        data = memoryview(chunk).cast("B")
        total = len(data)
        if total > self._left:
            raise IntegrityError("the store returned more ciphertext than the range covers")
        self._left -= total
        offset = 0
        if self._held:
            need = self._unit() - self._held_size
            if total < need:
                self._held.append(bytes(data))
                self._held_size += total
                return
            self._held.append(data[:need])
            joined = b"".join(self._held)
            self._held, self._held_size, offset = [], 0, need
            yield joined
        while offset < total:
            unit = self._unit()
            if total - offset < unit:
                self._held, self._held_size = [bytes(data[offset:])], total - offset
                return
            yield data[offset : offset + unit]
            offset += unit

    def feed(self, chunk: Chunk) -> list[bytes]:
        """Take more ciphertext; return the plaintext of every segment now complete."""
        out: list[bytes] = []
        for ciphertext in self._complete(chunk):
            plain = self._open(ciphertext)
            low, high = self._bounds(len(plain))
            out.append(plain if (low, high) == (0, len(plain)) else plain[low:high])
            self._index += 1
        return out

    def pieces(
        self, box: list[Chunk], size: int = SEND_SIZE, *, reuse: bytearray | None = None
    ) -> Iterator[memoryview]:
        """Take the chunk in `box` (out of it, so that nothing else holds it once this is
        done); yield its plaintext in pieces of at most `size` bytes, each decrypted only
        when asked for, straight into a buffer no view of which is alive (one this
        decryptor made for an earlier piece, once nothing views that piece any more); or,
        given a buffer to `reuse` (a segment long at least), into that one buffer every
        time, for a caller that is done with each piece before it asks for the next.

        Made whole at once, a store window's plaintext grew the heap by the window and let
        it go again, window after window, faulting every page in anew; a piece at a time,
        into a few buffers reused, the same pages serve the whole download.
        """
        size = max(size, self._opened.segment_size)  # a piece holds a whole segment at least
        if reuse is not None:
            if len(reuse) < self._opened.segment_size:
                raise ValueError("the buffer to reuse must hold a whole segment")
            size = len(reuse)
        buffers = _PieceBuffers(size)
        try:
            buffer = reuse if reuse is not None else buffers.take()
            filled = 0
            for ciphertext in self._complete(box.pop()):
                plain_size = len(ciphertext) - TAG_SIZE
                low, high = self._bounds(plain_size)
                if filled + high - low > size:
                    yield memoryview(buffer)[:filled]
                    buffer = reuse if reuse is not None else buffers.take()
                    filled = 0
                if (low, high) == (0, plain_size):
                    index = self._index
                    into = memoryview(buffer)[filled : filled + plain_size]
                    self._opened.open_segment_into(
                        index, ciphertext, into, last=index == self._count - 1
                    )
                    del into  # a view left alive would keep the buffer from reuse
                else:  # the first or last segment of the range, cut
                    buffer[filled : filled + high - low] = self._open(ciphertext)[low:high]
                filled += high - low
                self._index += 1
            if filled:
                yield memoryview(buffer)[:filled]
        finally:
            buffers.give_back()

    def finish(self) -> None:
        """Raises IntegrityError if the ciphertext ended before the range was covered."""
        if self._left:
            raise IntegrityError(
                f"the object ended {self._left} bytes early, in segment {self._index}"
            )


class _PieceBuffers:
    """The buffers one window's pieces are decrypted into: each reused once no view of its
    last piece is left, taken from the spares of finished windows where one is free, and
    given back to them when the window is done.

    A fresh bytearray per piece was zeroed and faulted in page by page, every time: a third
    of the event loop's time through a download from S3 (docs/downloads.md). Kept by the
    download from window to window instead, they would stay resident while it waits for
    its share of the read budget, outside that budget, for every download waiting.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._mine: list[mmap.mmap] = []

    def take(self) -> mmap.mmap:
        for buffer in self._mine:
            if unviewed(buffer):
                return buffer
        # Private: an anonymous mapping is shared by default, and so counted as shared memory.
        buffer = self._spare() or mmap.mmap(-1, self._size, flags=mmap.MAP_PRIVATE)
        if len(self._mine) < KEPT_PIECES:
            self._mine.append(buffer)
        return buffer

    def _spare(self) -> mmap.mmap | None:
        with _spare_lock:
            for at, buffer in enumerate(_spare):
                if len(buffer) == self._size and unviewed(buffer):
                    return _spare.pop(at)
        return None

    def give_back(self) -> None:
        # One still viewed (the last piece, being sent) is given back too: whoever takes
        # a spare checks that no view of it is left.
        with _spare_lock:
            while self._mine and len(_spare) < SPARE_PIECES:
                _spare.append(self._mine.pop())


def drop_spare_pieces() -> None:
    """Let go of the spare piece buffers (each one's memory goes once no piece in it is still
    being sent), so that a process falling idle does not carry them into its next transfer:
    four of them raised the start, and so the peak, of an upload after a download by about
    4 MiB."""
    with _spare_lock:
        _spare.clear()


def coalesce(pieces: list[bytes], size: int = SEND_SIZE) -> Iterator[bytes]:
    """Join consecutive pieces up to about `size` bytes each, taking them out of `pieces`
    as it goes (so each is freed once joined, not when the last is).

    A response sent in 64 KiB segments costs an ASGI send, a transport write and a
    flow-control check per segment; a copy into pieces of about a megabyte is much cheaper
    than that.
    """
    group: list[bytes] = []
    total = 0
    handed: list[bytes] = []  # what is yielded is not kept here while it is sent
    pieces.reverse()
    while pieces:
        group.append(pieces.pop())
        total += len(group[-1])
        if total >= size:
            handed.append(group[0] if len(group) == 1 else b"".join(group))
            group, total = [], 0
            yield handed.pop()
    if group:
        yield group[0] if len(group) == 1 else b"".join(group)


async def decrypt_range(
    opened: OpenedHeader,
    chunks: AsyncIterable[Chunk] | Iterable[Chunk],
    *,
    first_index: int,
    plain_start: int,
    plain_end: int,
    object_size: int,
) -> AsyncIterator[bytes | memoryview]:
    """Yield exactly plaintext `[plain_start, plain_end)` from the covering ciphertext.

    Args:
        opened: from `parse_header`.
        chunks: the object's bytes `[ct_start, ct_end)` as `ciphertext_range` gave them.
        first_index: the first segment index `ciphertext_range` gave.
        plain_start: first plaintext byte wanted.
        plain_end: end of the wanted range, exclusive.
        object_size: the object's size as recorded in the database.

    Raises:
        IntegrityError: a segment failed, or the stream ended early or ran long. Bytes
            yielded before the error came from authenticated segments.
    """
    decryptor = RangeDecryptor(
        opened, plain_start=plain_start, plain_end=plain_end, object_size=object_size
    )
    if first_index != decryptor.first_index:
        raise ValueError(f"the range starts in segment {decryptor.first_index}, not {first_index}")
    if isinstance(chunks, AsyncIterable):
        iterator = aiter(chunks)
        try:
            async for chunk in iterator:
                if len(chunk) >= PIECES_FROM:
                    # Decrypted here, a piece at a time as each is sent: a piece takes about
                    # as long to decrypt as handing it to a worker thread would
                    # (docs/downloads.md). Handed over in a box that `pieces` empties, so no
                    # reference outlives it here (a store may reuse the window's buffer as
                    # soon as none is left).
                    box = [chunk]
                    del chunk
                    for view in decryptor.pieces(box):
                        yield view
                        del view  # sent: not held while the next is decrypted
                    continue
                pieces = decryptor.feed(chunk)
                # Its plaintext is out: the ciphertext can go while the plaintext is sent.
                del chunk
                for piece in coalesce(pieces):
                    yield piece
        finally:
            # Release the source (e.g. a store connection) promptly on error or early exit.
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
    else:
        for chunk in chunks:
            for piece in decryptor.feed(chunk):
                yield piece
    decryptor.finish()
