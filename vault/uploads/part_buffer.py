"""One part's plaintext as it arrives, in memory given back page by page as it is sealed.

Sealing reads a part's plaintext and writes its ciphertext to a buffer of its own. Were the
plaintext let go only once the whole part is sealed, every part would be in memory twice
while it is sealed; giving back the plaintext's pages as soon as they are sealed and hashed
keeps it there about once. A `bytearray` cannot give back part of itself, so the plaintext
lives in an anonymous mapping of its own, whose pages `madvise(MADV_DONTNEED)` returns to
the system at once (like any heap memory, it is never written to a file).
"""

from __future__ import annotations

import mmap
from typing import cast

from vault.crypto import HUGE_PAGE, Chunk, page_buffer

__all__ = ["PartBuffer", "release_pages"]


class PartBuffer:
    """Up to `capacity` bytes of plaintext, appended in order, in a `crypto.page_buffer`:
    only the pages written to are resident; `release` gives back those below an offset."""

    def __init__(self, capacity: int) -> None:
        self._buffer = page_buffer(capacity)
        # A private mapping: madvise(MADV_DONTNEED) frees its pages (a shared one's stay).
        self._map = cast(mmap.mmap, self._buffer.obj)
        self._size = 0
        self._released = 0

    def __len__(self) -> int:
        return self._size

    def extend(self, data: Chunk) -> None:
        end = self._size + len(data)
        if end > len(self._buffer):
            raise ValueError(f"a part buffer holds {len(self._buffer)} bytes, not {end}")
        self._buffer[self._size : end] = data
        self._size = end

    def view(self) -> memoryview:
        """The bytes appended so far (a view: it keeps the mapping alive)."""
        return self._buffer[: self._size]

    def release(self, end: int) -> None:
        """Give the pages wholly below offset `end` back to the system. They read as zeros
        afterwards, so the caller must be done with those bytes for good."""
        # A huge page goes back whole: giving back part of one would split it, and the
        # split page's memory stays charged until the kernel gets round to it.
        huge_end = len(self._buffer) - len(self._buffer) % HUGE_PAGE
        end -= end % (HUGE_PAGE if end < huge_end else mmap.PAGESIZE)
        if end > self._released:
            self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end


def release_pages(buffer: memoryview) -> None:
    """Give all the pages of a `crypto.page_buffer` (such as a sealed part's ciphertext) back
    to the system now, whoever still holds a reference to it: a worker thread that passed it
    to the store drops its own a moment after the call returns, and meanwhile the next part
    may already be arriving. It reads as zeros afterwards."""
    mapped = buffer.obj
    if isinstance(mapped, mmap.mmap):
        mapped.madvise(mmap.MADV_DONTNEED)
