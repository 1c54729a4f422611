"""Buffers for large plaintext and ciphertext that cost memory only as they fill."""

from __future__ import annotations

import mmap

__all__ = ["HUGE_PAGE", "page_buffer", "unviewed"]

# A transparent huge page (the PMD size of x86-64 and of arm64 with 4 KiB pages); where the
# system has none, or a different size, madvise(MADV_HUGEPAGE) is only a hint.
HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)


def page_buffer(size: int, *, lead: int = 0) -> memoryview:
    """A zeroed, writable buffer of `size` bytes whose pages become resident only as they
    are written (a private anonymous mapping, never backed by a file): a part assembled or
    sealed into it costs memory only as it fills, where `bytearray(size)` would write every
    page up front.

    It is backed by transparent huge pages where the system offers them: filling a fresh
    8 MiB buffer with 4 KiB pages takes 2,048 page faults, each zeroing its page, and with
    one buffer for the plaintext and one for the ciphertext of every part those faults cost
    a 2 GiB upload about 1.5 of its 13-14 CPU seconds. The first `lead` bytes (rounded up to
    a page) sit in small pages before the first huge page, and so does the tail past the
    last whole one, so a few bytes there never cost 2 MiB (a part's header, say).
    """
    lead = _round_up(lead, mmap.PAGESIZE) % HUGE_PAGE
    start = (HUGE_PAGE - lead) % HUGE_PAGE
    # Whole huge pages: a mapping of such a size is aligned on one.
    mapped = mmap.mmap(-1, _round_up(start + max(size, 1), HUGE_PAGE), flags=mmap.MAP_PRIVATE)
    first, end = _round_up(start, HUGE_PAGE), start + size - (start + size) % HUGE_PAGE
    if end > first and _MADV_HUGEPAGE is not None:
        mapped.madvise(_MADV_HUGEPAGE, first, end - first)
    return memoryview(mapped)[start : start + size]


def _round_up(size: int, unit: int) -> int:
    return -(-size // unit) * unit


def unviewed(buffer: mmap.mmap) -> bool:
    """Whether no view of `buffer` (a mapping, as `page_buffer`'s views are of) is alive, so
    that it may take new bytes. (storage/windows.py asks the same of its windows; vault and
    storage share no code.)"""
    try:
        # An mmap refuses to resize, even to its own size, while any view of it is alive.
        buffer.resize(len(buffer))
    except BufferError:
        return False
    return True
