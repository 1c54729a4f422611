"""glibc malloc tuning for a server process that moves large buffers between threads.

Transfers allocate megabyte buffers in boto3's worker threads and free them on the event
loop. With glibc's defaults each thread gets an arena of its own (up to 8 per core), and
after the first large buffer is freed the mmap threshold rises to that size, so later
buffers come from the arenas and their freed space is kept as fragmented heap: the process
grows by tens of MiB per transfer and never gives it back. Fixing the threshold keeps every
large buffer in its own mapping, returned to the kernel on free; capping the arenas bounds
the rest. This is what MALLOC_MMAP_THRESHOLD_ and MALLOC_ARENA_MAX would do, applied by the
process itself so that no deployment has to remember them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

# mallopt(3) parameters from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings above unless the environment already chose; False off glibc."""
    name = ctypes.util.find_library("c")
    if name is None or "libc.so" not in name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    choices = [
        ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
    ]
    for variable, parameter, value in choices:
        if variable not in os.environ and mallopt(parameter, value) != 1:
            logger.warning("mallopt(%d, %d) failed", parameter, value)
    return True
