"""The buffers a read's windows are read into: anonymous mappings of the read's own, reused
window after window once no view of them is left.

A window read as a new bytes object of a megabyte or more is mapped afresh by the server's
allocator (web/malloc.py) and faulted in page by page, every time; a reused buffer is
faulted in once. A consumer that keeps a window simply keeps its buffer: it is reused only
when nothing views it any more.
"""

from __future__ import annotations

import mmap

WindowBuffer = mmap.mmap


def new_buffer(size: int) -> WindowBuffer:
    # Private: an anonymous mapping is shared by default, and so kept as shared memory.
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)


def unviewed(buffer: WindowBuffer) -> bool:
    """Whether no view of `buffer` is alive, so it may take new bytes."""
    try:
        # An mmap refuses to resize, even to its own size, while any view of it is alive.
        buffer.resize(len(buffer))
    except BufferError:
        return False
    return True
