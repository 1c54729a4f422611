"""The server's allocator settings: a freed large buffer goes back to the system, a stream
of request-sized chunks does not make the heap shrink and regrow, and what a transfer
leaves free inside the heap goes back when the process falls idle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUNE = """
import sys
if sys.argv[1] == "tuned":
    from web.malloc import tune_allocator
    assert tune_allocator()
"""
# Frees 8 MiB buffers three times and prints how much of them stayed resident (MiB).
RETAINED = (
    TUNE
    + """
import psutil
process = psutil.Process()
before = process.memory_info().rss
for _ in range(3):
    buffer = bytearray(8 << 20)
    buffer[::4096] = b"x" * len(buffer[::4096])
    del buffer
print((process.memory_info().rss - before) >> 20)
"""
)
# A hundred request-body chunks as uvicorn hands them on (appended to a bytearray, then
# copied out as bytes); prints the minor page faults they cost.
FAULTS = (
    TUNE
    + """
import resource
chunk = b"x" * (256 << 10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    body = bytearray()
    body += chunk
    data = bytes(body)
    del body, data
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
)


# Leaves 27 MiB free between live blocks of a worker thread's arena, where no trim
# threshold reaches, and prints how much of it `release_free_memory` gives back (MiB).
FRAGMENTED = (
    TUNE
    + """
import threading
import psutil
from web.malloc import release_free_memory
kept = []
def transfer():
    blocks = [bytearray(900 << 10) for _ in range(60)]
    kept.extend(blocks[1::2])
worker = threading.Thread(target=transfer)
worker.start()
worker.join()
process = psutil.Process()
before = process.memory_info().rss
assert release_free_memory()
print((before - process.memory_info().rss) >> 20)
"""
)


def probe(code: str, mode: str, **malloc_env: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | malloc_env
    result = subprocess.run(
        [sys.executable, "-c", code, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_parts_leave_the_process_once_the_allocator_is_tuned() -> None:
    # glibc's dynamic mmap threshold keeps the second and later 8 MiB buffers in the heap.
    assert probe(RETAINED, "default") >= 6
    assert probe(RETAINED, "tuned") < 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_body_chunks_reuse_the_heap_once_the_allocator_is_tuned() -> None:
    # A fixed mmap threshold also fixes glibc's trim threshold, at 128 KiB unless set: each
    # freed chunk at the top of the heap then goes back to the system, and the next one
    # faults its pages in again (1,856 faults measured, against 128 tuned).
    churning = probe(FAULTS, "tuned", MALLOC_TRIM_THRESHOLD_=str(128 << 10))
    tuned = probe(FAULTS, "tuned")
    assert tuned < 1000 and tuned * 4 < churning


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_memory_inside_the_heap_goes_back_when_released() -> None:
    assert probe(FRAGMENTED, "tuned") >= 20
