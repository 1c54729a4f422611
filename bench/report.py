"""The results of the benchmarks: rows of measurements, the markdown table, percentiles
and the lines that say how and where a run was made."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

from bench.common import MiB
from bench.measure import Measurement

# Environment variables that change what is measured; shown in front of the command line.
_RELEVANT_ENV = (
    "MALLOC_ARENA_MAX",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "PYTHONMALLOC",
)
_SECRET_OPTIONS = ("--secret-key",)


@dataclass
class Row:
    """One line of the result table; `runs` holds one measurement per round."""

    phase: str
    size: int
    baseline: str | None = None
    runs: list[Measurement] = field(default_factory=list)
    unit: str = "MB/s"

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def rate(self) -> float:
        """Median throughput over the rounds, in MB/s (10^6 bytes per second)."""
        return self.size / self.seconds / 1e6

    def peak(self, name: str) -> int | None:
        values = [run.peak_rss[name] for run in self.runs if name in run.peak_rss]
        return max(values) if values else None

    def start(self, name: str) -> int | None:
        values = [run.start_rss[name] for run in self.runs if name in run.start_rss]
        return min(values) if values else None

    def cpu(self, name: str) -> float | None:
        values = [run.cpu.get(name) for run in self.runs]
        known = [value for value in values if value is not None]
        return statistics.median(known) if known and len(known) == len(values) else None


def mib(value: int | None) -> str:
    return "–" if value is None else f"{value / MiB:.0f}"


def cpu_cell(row: Row, names: Sequence[str]) -> str:
    """CPU seconds of each named group, to a tenth (whole seconds hide a 10 % change)."""
    parts = []
    for name in names:
        value = row.cpu(name)
        parts.append("–" if value is None else f"{value:.1f}")
    return " / ".join(parts)


def print_table(
    rows: Sequence[Row], *, rss: str, rss_title: str, cpu: Sequence[str], cpu_title: str
) -> None:
    """A markdown table: throughput, ratio to the baseline row, peak RSS, CPU seconds."""
    by_phase = {row.phase: row for row in rows}
    header = ["Phase", "MB/s", "vs baseline", rss_title, cpu_title]
    lines = [header, ["---", "---:", "---", "---:", "---:"]]
    for row in rows:
        if row.baseline is None:
            ratio = "baseline"
        elif row.baseline in by_phase:
            base = by_phase[row.baseline]
            ratio = f"{row.rate / base.rate:.0%} of {row.baseline}"
        else:
            ratio = row.baseline
        peak, start = row.peak(rss), row.start(rss)
        rss_cell = mib(peak) if start is None else f"{mib(peak)} (from {mib(start)})"
        lines.append([row.phase, f"{row.rate:,.0f}", ratio, rss_cell, cpu_cell(row, cpu)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        print("| " + " | ".join(cells) + " |")


def ratio(rows: Sequence[Row], phase: str, baseline: str) -> float:
    by_phase = {row.phase: row for row in rows}
    return by_phase[phase].rate / by_phase[baseline].rate


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def command_line(module: str, argv: Sequence[str]) -> str:
    """How this run was started, secrets masked, with the environment that matters."""
    shown: list[str] = []
    mask = False
    for arg in argv:
        if mask:
            shown.append("***")
            mask = False
            continue
        name, equals, _ = arg.partition("=")
        if name in _SECRET_OPTIONS:
            if equals:
                shown.append(f"{name}=***")
            else:
                shown.append(arg)
                mask = True
            continue
        shown.append(arg)
    env = [
        f"{name}={shlex.quote(os.environ[name])}" for name in _RELEVANT_ENV if name in os.environ
    ]
    return " ".join([*env, "python", "-m", module, *map(shlex.quote, shown)])


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def target_line(label: str, value: float, target: float, *, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value < target
    return f"- {label}: {value:.0%} (target {'≥' if higher_is_better else '<'} {target:.0%}) — " + (
        "met" if met else "MISSED"
    )
