"""One part's plaintext as it arrives, laid out as it will be sealed, so that sealing writes
its ciphertext over it and the part is in memory once.

Sealing a part into a buffer of its own held it twice, plaintext and ciphertext, unless the
plaintext's pages were given back as it was sealed; with huge pages those went back 2 MiB at
a time while the ciphertext's next huge page filled ahead of them, so a part being sealed
held about 10 MiB for its 8. Here each segment's plaintext sits where its ciphertext goes,
with room for the header in part 1 and for each segment's tag after it
(`crypto.encrypt_part_in_place`). The buffer is an anonymous mapping (`crypto.page_buffer`):
only its pages written to are resident, and, like any heap memory, it is never written to a
file.
"""

from __future__ import annotations

import mmap

from vault.crypto import TAG_SIZE, Chunk, page_buffer, sealed_part_size

__all__ = ["PartBuffer", "release_pages"]


class PartBuffer:
    """Up to `capacity` bytes of plaintext, appended in order: segment j (of `segment_size`
    bytes) at `lead + j·(segment_size + TAG_SIZE)`, where `crypto.encrypt_part_in_place`
    seals it."""

    def __init__(self, capacity: int, segment_size: int, *, lead: int = 0) -> None:
        self._capacity = capacity
        self._segment = segment_size
        self._lead = lead
        self._sealed_size = sealed_part_size(capacity, segment_size, lead)
        self._buffer: memoryview | None = None  # mapped when first written to, or adopted
        self._size = 0

    def adopt(self, buffer: memoryview) -> bool:
        """Take `buffer`, the `sealable` of an earlier part buffer of the same size and lead
        that nothing else uses any more, as this one's, before anything is written to it;
        False (and nothing taken) if the sizes differ or this one has a buffer already.

        Its pages are resident already: a fresh buffer's are zeroed by the kernel as they
        are first written, 5 % of the server's CPU through a tus upload to S3."""
        if self._buffer is not None or len(buffer) != self._sealed_size:
            return False
        self._buffer = buffer
        return True

    def _mapped(self) -> memoryview:
        if self._buffer is None:
            self._buffer = page_buffer(self._sealed_size, lead=self._lead)
        return self._buffer

    def __len__(self) -> int:
        return self._size

    @property
    def sealable(self) -> memoryview:
        """The whole buffer, as `crypto.encrypt_part_in_place` takes it (a view: it keeps the
        mapping alive); its plaintext is sealed over."""
        return self._mapped()

    def extend(self, data: Chunk) -> None:
        view = memoryview(data).cast("B")
        if self._size + len(view) > self._capacity:
            raise ValueError(
                f"a part buffer holds {self._capacity} bytes, not {self._size + len(view)}"
            )
        segment, size, buffer = self._segment, self._size, self._mapped()
        while view:
            index, within = divmod(size, segment)
            at = self._lead + index * (segment + TAG_SIZE) + within
            count = min(segment - within, len(view))
            buffer[at : at + count] = view[:count]
            view, size = view[count:], size + count
        self._size = size

    def plaintext(self, start: int = 0, end: int | None = None) -> bytes:
        """A copy of the bytes appended from offset `start` to `end` (or all so far), in one
        piece."""
        end = self._size if end is None else min(end, self._size)
        segment = self._segment
        pieces = []
        while start < end:
            index, within = divmod(start, segment)
            count = min(segment - within, end - start)
            at = self._lead + index * (segment + TAG_SIZE) + within
            pieces.append(self._mapped()[at : at + count])
            start += count
        return b"".join(pieces)


def release_pages(buffer: memoryview) -> None:
    """Give all the pages of a `crypto.page_buffer` (such as a sealed part's ciphertext) back
    to the system now, whoever still holds a reference to it: a worker thread that passed it
    to the store drops its own a moment after the call returns, and meanwhile the next part
    may already be arriving. It reads as zeros afterwards."""
    mapped = buffer.obj
    if isinstance(mapped, mmap.mmap):
        mapped.madvise(mmap.MADV_DONTNEED)
