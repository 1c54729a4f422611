"""Buffers for large plaintext and ciphertext that cost memory only as they fill."""

from __future__ import annotations

import mmap

__all__ = ["HUGE_PAGE", "page_buffer"]

# A transparent huge page (the PMD size of x86-64 and of arm64 with 4 KiB pages); where the
# system has none, or a different size, madvise(MADV_HUGEPAGE) is only a hint.
HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)


def page_buffer(size: int) -> memoryview:
    """A zeroed, writable buffer of `size` bytes whose pages become resident only as they
    are written (a private anonymous mapping, never backed by a file): a part assembled or
    sealed into it costs memory only as it fills, where `bytearray(size)` would write every
    page up front.

    Its whole `HUGE_PAGE`s are backed by transparent huge pages where the system offers
    them: filling a fresh 8 MiB buffer with 4 KiB pages takes 2,048 page faults, each
    zeroing its page, and with one buffer for the plaintext and one for the ciphertext of
    every part those faults cost a large upload as much CPU as AES-GCM does. The mapping is
    reserved in whole huge pages so that the kernel aligns it on one; the tail past the last
    whole huge page stays in small pages, so a part's few trailing bytes of tags do not cost
    2 MiB."""
    mapped = mmap.mmap(-1, -(-max(size, 1) // HUGE_PAGE) * HUGE_PAGE, flags=mmap.MAP_PRIVATE)
    whole = size - size % HUGE_PAGE
    if whole and _MADV_HUGEPAGE is not None:
        mapped.madvise(_MADV_HUGEPAGE, 0, whole)
    return memoryview(mapped)[:size]
