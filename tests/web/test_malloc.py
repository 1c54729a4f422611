"""The server's allocator settings: a freed large buffer goes back to the system."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Frees 8 MiB buffers three times and prints how much of them stayed resident (MiB).
PROBE = """
import sys, psutil
if sys.argv[1] == "tuned":
    from web.malloc import tune_allocator
    assert tune_allocator()
process = psutil.Process()
before = process.memory_info().rss
for _ in range(3):
    buffer = bytearray(8 << 20)
    buffer[::4096] = b"x" * len(buffer[::4096])
    del buffer
print((process.memory_info().rss - before) >> 20)
"""


def retained_mib(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
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
    assert retained_mib("default") >= 6
    assert retained_mib("tuned") < 2
