"""Resource meters of the benchmarks: wall time, peak RSS and CPU seconds of named
processes, measured around each phase."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import platform
import threading
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

ENV_RGW_DIR = "CLIENTVAULT_RGW_DIR"


def trim_memory() -> None:
    """Collect garbage and hand freed heap back to the system, so that each phase starts
    from the same footing rather than inheriting what the previous one left behind."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name and platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def rgw_processes() -> list[Any]:
    """The daemons of the cluster `scripts/rgw` started (found by its config file)."""
    directory = os.environ.get(ENV_RGW_DIR, "")
    if not directory:
        return []
    conf = os.path.join(os.path.realpath(directory), "ceph.conf")
    found: list[Any] = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if conf in (proc.info["cmdline"] or []):
                found.append(proc)
    return found


def _cpu_seconds(processes: Sequence[Any]) -> float | None:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return None
        total += times.user + times.system
    return total


@dataclass
class Measurement:
    """Filled in when the `Meter.measure()` block ends."""

    seconds: float = 0.0
    peak_rss: dict[str, int] = field(default_factory=dict)
    start_rss: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)


class Meter:
    """Wall time, peak RSS (sampled every `interval` s) and CPU time of named processes.

    `rss` names the processes whose memory is sampled; `cpu` names groups of processes whose
    CPU time (user + system, all threads) is summed.
    """

    def __init__(
        self,
        rss: dict[str, Any],
        cpu: dict[str, Sequence[Any]],
        *,
        interval: float = 0.05,
        settle: str | None = None,
    ) -> None:
        self._rss = rss
        self._cpu = cpu
        self._interval = interval
        self._settle = settle
        self._lock = threading.Lock()
        self._peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _read(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for name, proc in self._rss.items():
            with contextlib.suppress(psutil.Error):
                values[name] = int(proc.memory_info().rss)
        return values

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            values = self._read()
            with self._lock:
                for name, value in values.items():
                    self._peaks[name] = max(self._peaks.get(name, 0), value)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def settle(self, *, busy: float = 0.1, timeout: float = 120) -> None:
        """Wait until the `settle` group (the S3 daemons) is idle: below `busy` of a core
        over half a second. RGW deletes objects in the background and BlueStore compacts
        after large writes; either would otherwise steal CPU from whatever runs next."""
        if self._settle is None or not self._cpu.get(self._settle):
            return
        procs = self._cpu[self._settle]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = _cpu_seconds(procs)
            time.sleep(0.5)
            after = _cpu_seconds(procs)
            if before is None or after is None or (after - before) / 0.5 < busy:
                return
        print(f"(the S3 daemons were still busy after {timeout:.0f} s; measuring anyway)")

    @contextlib.contextmanager
    def measure(self) -> Iterator[Measurement]:
        result = Measurement()
        self.settle()
        trim_memory()
        start = self._read()
        with self._lock:
            self._peaks = dict(start)
        result.start_rss = start
        cpu_before = {name: _cpu_seconds(procs) for name, procs in self._cpu.items()}
        began = time.perf_counter()
        yield result
        result.seconds = time.perf_counter() - began
        end = self._read()
        with self._lock:
            for name, value in end.items():
                self._peaks[name] = max(self._peaks.get(name, 0), value)
            result.peak_rss = dict(self._peaks)
        for name, procs in self._cpu.items():
            after, before = _cpu_seconds(procs), cpu_before[name]
            result.cpu[name] = None if after is None or before is None else after - before


class LargestProcess:
    """Quacks like `psutil.Process` for `Meter`: the RSS of the largest of some processes."""

    def __init__(self, processes: Sequence[psutil.Process]) -> None:
        self._processes = processes

    def memory_info(self) -> Any:
        rss = 0
        for process in self._processes:
            with contextlib.suppress(psutil.Error):
                rss = max(rss, process.memory_info().rss)
        return types.SimpleNamespace(rss=rss)
