"""Shared pieces of the benchmarks: generated data, checking sinks, S3 set-up, raw boto3
transfers, resource meters and the result table.

Benchmarks are scripts, not tests. Run them from the repository root, e.g.
`python -m bench.crypto_storage --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import hashlib
import os
import platform
import random
import shlex
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

import anyio.lowlevel
import psutil
from boto3.s3.transfer import TransferConfig

from storage import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

MiB = 1 << 20
BLOCK = 8 * MiB
_COUNTER = 8  # bytes of block counter at the start of every block
ENV_ENDPOINT = "CLIENTVAULT_TEST_S3_ENDPOINT"
ENV_ACCESS_KEY = "CLIENTVAULT_TEST_S3_ACCESS_KEY"
ENV_SECRET_KEY = "CLIENTVAULT_TEST_S3_SECRET_KEY"  # noqa: S105 - a variable name
ENV_RGW_DIR = "CLIENTVAULT_RGW_DIR"
# Environment variables that change what is measured; shown in front of the command line.
_RELEVANT_ENV = (
    "MALLOC_ARENA_MAX",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "PYTHONMALLOC",
)
_SECRET_OPTIONS = ("--secret-key",)


# --- Generated data ---------------------------------------------------------------------------


def _counter(block: int) -> bytes:
    return block.to_bytes(_COUNTER, "big")


class PatternSource:
    """`size` bytes made of one random block repeated, each copy starting with its index.

    Random bytes do not compress, and the counter makes every block different, yet nothing
    but the one block is ever held: any range is produced on demand.
    """

    def __init__(self, size: int, *, block: int = BLOCK, seed: int = 0) -> None:
        if size < 0 or block <= _COUNTER:
            raise ValueError("size must not be negative and a block must exceed the counter")
        self.size = size
        self.block = block
        self.base = random.Random(seed).randbytes(block)

    def piece(self, position: int, length: int) -> bytes:
        """Bytes `[position, position + length)`, which must lie within one block."""
        index, offset = divmod(position, self.block)
        if offset + length > self.block:
            raise ValueError("a piece must not cross a block boundary")
        if offset >= _COUNTER:
            return self.base[offset : offset + length]
        head = _counter(index)[offset : min(_COUNTER, offset + length)]
        return head + self.base[offset + len(head) : offset + length]

    def chunks(self, chunk: int) -> Iterator[bytes]:
        """The stream as fresh `bytes` of at most `chunk` bytes (never crossing a block)."""
        position = 0
        while position < self.size:
            length = min(chunk, self.block - position % self.block, self.size - position)
            yield self.piece(position, length)
            position += length

    async def achunks(self, chunk: int) -> AsyncIterator[bytes]:
        """`chunks`, yielding to the event loop between chunks as a network body would."""
        for data in self.chunks(chunk):
            await anyio.lowlevel.checkpoint()
            yield data

    def views(self, chunk: int) -> Iterator[memoryview]:
        """`size` bytes as zero-copy views of the base block (no counters): input for
        CPU-only measurements, where producing the data must cost nothing."""
        whole = memoryview(self.base)
        position = 0
        while position < self.size:
            offset = position % self.block
            length = min(chunk, self.block - offset, self.size - position)
            yield whole[offset : offset + length]
            position += length

    def reader(self) -> PatternReader:
        """A non-seekable, read-only file object over the stream (for boto3)."""
        return PatternReader(self)

    def sink(self) -> CheckingSink:
        """A write-only file object that checks what it receives against this stream."""
        return CheckingSink(self)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for data in self.chunks(BLOCK):
            digest.update(data)
        return digest.hexdigest()


class PatternReader:
    """`read(n)` over a `PatternSource`; not seekable, so boto3 streams it part by part."""

    def __init__(self, source: PatternSource) -> None:
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        source = self._source
        left = source.size - self._position
        wanted = left if size is None or size < 0 else min(size, left)
        pieces: list[bytes] = []
        while wanted > 0:
            length = min(wanted, source.block - self._position % source.block)
            pieces.append(source.piece(self._position, length))
            self._position += length
            wanted -= length
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class CheckingSink:
    """Counts the bytes written and checks every block counter plus the last 8 bytes of each
    write against the source: cheap enough not to weigh on the measurement, yet any
    misplaced, missing or repeated block shows.

    Seekable, so that boto3 may write parts as they arrive (as into a file); writes in
    order need no seeking.
    """

    def __init__(self, source: PatternSource) -> None:
        self._source = source
        self.position = 0
        self.received = 0
        self.errors = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.position = offset
        elif whence == os.SEEK_CUR:
            self.position += offset
        else:
            self.position = self._source.size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        length = len(view)
        if not length:
            return 0
        start, end, block = self.position, self.position + length, self._source.block
        if end > self._source.size:
            self.errors += 1
        else:
            for index in range(start // block, (end - 1) // block + 1):
                low, high = max(index * block, start), min(index * block + _COUNTER, end)
                if low < high and view[low - start : high - start] != self._expected(low, high):
                    self.errors += 1
            tail = max(start, end - 8, (end - 1) // block * block)
            if view[tail - start :] != self._expected(tail, end):
                self.errors += 1
        self.position = end
        self.received += length
        return length

    def _expected(self, low: int, high: int) -> bytes:
        return self._source.piece(low, high - low)

    def check(self) -> None:
        if self.received != self._source.size:
            raise RuntimeError(f"received {self.received} bytes, expected {self._source.size}")
        if self.errors:
            raise RuntimeError(f"{self.errors} spot checks of the received bytes failed")


# --- S3 ---------------------------------------------------------------------------------------


def add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", default=os.environ.get(ENV_ENDPOINT, ""), help=f"default: ${ENV_ENDPOINT}"
    )
    parser.add_argument(
        "--access-key",
        default=os.environ.get(ENV_ACCESS_KEY, ""),
        help=f"default: ${ENV_ACCESS_KEY}",
    )
    parser.add_argument(
        "--secret-key",
        default=os.environ.get(ENV_SECRET_KEY, ""),
        help=f"default: ${ENV_SECRET_KEY}",
    )
    parser.add_argument("--region", default="us-east-1")


def check_s3_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not (args.endpoint and args.access_key and args.secret_key):
        parser.error(
            f"an S3 endpoint and keys are needed: --endpoint/--access-key/--secret-key or "
            f"${ENV_ENDPOINT}, ${ENV_ACCESS_KEY}, ${ENV_SECRET_KEY} (see scripts/rgw)"
        )


def s3_client(args: argparse.Namespace, *, max_pool_connections: int = 32) -> S3Client:
    """A client configured exactly as the app configures its own."""
    return make_s3_client(
        endpoint_url=args.endpoint,
        region=args.region,
        access_key_id=args.access_key,
        secret_access_key=args.secret_key,
        max_pool_connections=max_pool_connections,
    )


def empty_bucket(client: S3Client, bucket: str) -> None:
    for uploads in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in uploads.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys: list[ObjectIdentifierTypeDef] = [
            {"Key": obj["Key"]} for obj in page.get("Contents", [])
        ]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@contextlib.contextmanager
def temporary_bucket(client: S3Client, prefix: str) -> Iterator[str]:
    """A new bucket for this run, emptied and removed afterwards."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


def transfer_config(part: int, concurrency: int) -> TransferConfig:
    return TransferConfig(
        multipart_threshold=part,
        multipart_chunksize=part,
        max_concurrency=concurrency,
        preferred_transfer_client="classic",
    )


def raw_upload(
    client: S3Client, bucket: str, key: str, source: PatternSource, part: int, concurrency: int
) -> None:
    reader = cast(IO[bytes], source.reader())  # file-like enough: boto3 only reads it
    client.upload_fileobj(reader, bucket, key, Config=transfer_config(part, concurrency))


def raw_download(
    client: S3Client, bucket: str, key: str, source: PatternSource, part: int, concurrency: int
) -> None:
    sink = source.sink()
    target = cast(IO[bytes], sink)  # boto3 only writes to it
    client.download_fileobj(bucket, key, target, Config=transfer_config(part, concurrency))
    sink.check()


# --- Meters -----------------------------------------------------------------------------------


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


# --- Results ----------------------------------------------------------------------------------


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


def _cpu_cell(row: Row, names: Sequence[str]) -> str:
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
        lines.append([row.phase, f"{row.rate:,.0f}", ratio, rss_cell, _cpu_cell(row, cpu)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        print("| " + " | ".join(cells) + " |")


def ratio(rows: Sequence[Row], phase: str, baseline: str) -> float:
    by_phase = {row.phase: row for row in rows}
    return by_phase[phase].rate / by_phase[baseline].rate


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
