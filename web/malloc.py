"""Process-wide allocator settings for the server (glibc only; a no-op elsewhere).

A large transfer moves 8 MiB parts through several threads. With glibc's defaults each
thread may grow an arena of its own (up to 8 per core), and freeing an mmapped block
raises the mmap threshold to that block's size (mallopt(3), "dynamic mmap threshold"), so
from the second part on the 8 MiB buffers come from the arenas' heaps, where a freed one
stays resident. Peak RSS then tracks the arenas' high-water mark rather than the bytes
alive. A fixed threshold sends every block of `MMAP_THRESHOLD` or more straight to mmap
and back to the system when freed, and two arenas bound the rest.

Below the threshold, a request body arrives in chunks of about 256 KiB, each copied twice
on its way in, and glibc gave the top of the heap back to the system whenever 128 KiB of
it was free (fixing the mmap threshold fixes the trim threshold at its default too): the
heap grew and shrank by most of a megabyte some 250 times a second, and every regrowth
faulted in and zeroed its pages afresh (a quarter of the event loop's CPU through a large
upload: 15.4-16.2 CPU seconds against 13.1-14.2 for a 2 GiB upload to the local store). A
trim threshold of `TRIM_THRESHOLD`, the largest block the heap serves, keeps that much free
at the top of a heap instead. A larger one bought no speed and kept more after a transfer
(a 4 MiB threshold left the next upload starting 2 MiB higher).

The same as MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and MALLOC_ARENA_MAX in the
environment, which, when set, win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from typing import Any

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "release_free_memory", "tune_allocator"]

logger = logging.getLogger(__name__)

MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 1 << 20
ARENA_MAX = 2
# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.cache
def _libc_function(name: str) -> Any:
    """A function of the C library; None where it has none of that name (not glibc)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError, TypeError):
        return None


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds and arena count for this process; False if not
    glibc."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and done
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        done = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and done
    if "MALLOC_ARENA_MAX" not in os.environ:
        done = mallopt(_M_ARENA_MAX, ARENA_MAX) == 1 and done
    if not done:
        logger.warning("mallopt refused the allocator settings")
    return done


def release_free_memory() -> bool:
    """Give the allocator's free pages back to the system, from every arena and from inside
    the heap as well as its top (glibc's `malloc_trim(0)`); False if not glibc.

    The trim threshold above keeps up to a megabyte free at the top of each heap, and a
    transfer leaves more free in the middle of its thread's arena: memory a process at rest
    would otherwise go on holding. About 2 ms when there is something to give back.
    """
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
