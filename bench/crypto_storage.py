"""Throughput and memory of the encrypted storage pipeline, each against its own baseline.

    python -m bench.crypto_storage [--size-mib 1024] [--part-mib 8] [--concurrency 4]
        [--endpoint URL --access-key K --secret-key S] [--rounds N]

The S3 endpoint and keys default to $CLIENTVAULT_TEST_S3_ENDPOINT, _ACCESS_KEY and
_SECRET_KEY, as `scripts/rgw start` exports them. For every phase the same generated stream
(an 8 MiB random block repeated with a block counter, never held whole) goes through:

- S3: raw boto3 `upload_fileobj`/`download_fileobj` (same part size and concurrency) versus
  `vault.crypto.blobs.write_encrypted`/`read_decrypted` on `S3ObjectStore`, in one bucket;
- local disk: a plain file written (and fsynced) and read back versus the same two functions
  on `LocalObjectStore`;
- CPU only: bare AES-256-GCM over 64 KiB segments versus `Encryptor` (which also hashes the
  plaintext with SHA-256) and `decrypt_range`.

Peak RSS of this process is sampled every 50 ms during each phase; garbage is collected and
freed heap returned to the system (`malloc_trim`) before each phase so that one phase's
leftovers are not charged to the next. With several rounds the median throughput and the
highest peak are shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import psutil
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import (
    CheckingSink,
    MiB,
    PatternSource,
    add_s3_arguments,
    check_s3_arguments,
    raw_download,
    raw_upload,
    s3_client,
    temporary_bucket,
)
from bench.measure import Meter, rgw_processes
from bench.report import Row, command_line, describe_machine, print_table, ratio
from storage import LocalObjectStore, S3ObjectStore
from vault import crypto
from vault.crypto.blobs import StoredBlob, read_decrypted, write_encrypted
from vault.store import ObjectStore

SEGMENT = 64 * 1024
RSS_LIMIT_MIB = 150

RAW_UP = "raw boto3 upload"
CV_UP = "encrypt+store (S3)"
RAW_DOWN = "raw boto3 download"
CV_DOWN = "fetch+decrypt (S3)"
FILE_WRITE = "plain file write+fsync"
LOCAL_UP = "encrypt+store (local)"
FILE_READ = "plain file read"
LOCAL_DOWN = "fetch+decrypt (local)"
AES_ENC = "bare AES-256-GCM encrypt"
PIPELINE = "crypto pipeline (Encryptor)"
SHA = "SHA-256 alone (part of pipeline)"
AES_DEC = "bare AES-256-GCM decrypt"
RANGE_DEC = "range-decrypt (decrypt_range)"
OURS = (CV_UP, CV_DOWN, LOCAL_UP, LOCAL_DOWN, PIPELINE, RANGE_DEC)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crypto_storage",
        description="Encrypted storage pipeline versus raw boto3, plain files and bare AES-GCM.",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="stream size (default 1024)")
    parser.add_argument("--part-mib", type=int, default=8, help="part size (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight (default 4)")
    parser.add_argument(
        "--chunk-kib", type=int, default=1024, help="size of the pieces fed in (default 1024)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every phase (default 1)")
    parser.add_argument(
        "--phases",
        default="s3,local,cpu",
        help="comma-separated subset of s3, local, cpu (default: all)",
    )
    add_s3_arguments(parser)
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.part_mib < 5 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--size-mib ≥ 1, --part-mib ≥ 5, --concurrency ≥ 1, --rounds ≥ 1")
    if args.chunk_kib < 1:
        parser.error("--chunk-kib ≥ 1")
    args.phases = {phase.strip() for phase in args.phases.split(",") if phase.strip()}
    if not args.phases or not args.phases <= {"s3", "local", "cpu"}:
        parser.error("--phases takes a comma-separated subset of s3, local, cpu")
    if "s3" in args.phases:  # the local and CPU phases need no store
        check_s3_arguments(parser, args)
    return args


def new_sealer() -> tuple[crypto.SegmentSealer, crypto.ObjectContext, bytes]:
    context = crypto.ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    dek = crypto.new_data_key()
    return crypto.SegmentSealer(dek, context), context, dek


async def encrypt_and_store(
    store: ObjectStore,
    key: str,
    source: PatternSource,
    *,
    chunk: int,
    sealer: crypto.SegmentSealer,
    part: int,
    concurrency: int,
) -> StoredBlob:
    return await write_encrypted(
        store,
        key,
        source.achunks(chunk),
        sealer=sealer,
        part_size=part,
        concurrency=concurrency,
        expected_size=source.size,
    )


async def fetch_and_decrypt(
    store: ObjectStore, key: str, opened: crypto.OpenedHeader, object_size: int, sink: CheckingSink
) -> None:
    async for piece in read_decrypted(store, key, opened=opened, object_size=object_size):
        sink.write(piece)
    sink.check()


def write_plain_file(path: Path, source: PatternSource, chunk: int) -> None:
    with open(path, "wb") as out:
        for data in source.chunks(chunk):
            out.write(data)
        out.flush()
        os.fsync(out.fileno())


def read_plain_file(path: Path, source: PatternSource, chunk: int) -> None:
    sink = source.sink()
    with open(path, "rb") as src:
        while data := src.read(chunk):
            sink.write(data)
    sink.check()


def bare_encrypt(source: PatternSource) -> None:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    for index, segment in enumerate(source.views(SEGMENT)):
        aead.encrypt(index.to_bytes(12, "big"), segment, None)


def pipeline_encrypt(source: PatternSource, chunk: int) -> None:
    encryptor = crypto.Encryptor(new_sealer()[0])
    for data in source.views(chunk):
        encryptor.feed(data)
    encryptor.finish()


def sha256_alone(source: PatternSource, chunk: int) -> None:
    import hashlib

    digest = hashlib.sha256()
    for data in source.views(chunk):
        digest.update(data)
    digest.hexdigest()


def bare_decrypt(source: PatternSource) -> None:
    # The segments of one block, sealed once; decrypting them over and over is the same work.
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    sealed = [
        aead.encrypt(index.to_bytes(12, "big"), segment, None)
        for index, segment in enumerate(source.views(SEGMENT))
        if index < source.block // SEGMENT
    ]
    count = -(-source.size // SEGMENT)
    for index in range(count):
        which = index % len(sealed)
        aead.decrypt(which.to_bytes(12, "big"), sealed[which], None)


def write_ciphertext(path: Path, source: PatternSource, chunk: int) -> crypto.OpenedHeader:
    """The stream encrypted into a file (not timed), for the decryption phase."""
    sealer, context, dek = new_sealer()
    encryptor = crypto.Encryptor(sealer)
    with open(path, "wb") as out:
        for data in source.views(chunk):
            for piece in encryptor.feed(data):
                out.write(piece)
        for piece in encryptor.finish():
            out.write(piece)
    return crypto.parse_header(sealer.header, context, dek)


def file_windows(path: Path, start: int, window: int) -> Iterator[memoryview]:
    """The file from `start` in windows read into one reused buffer (as a store would
    hand them over, minus the network)."""
    buffer = bytearray(window)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as src:
        src.seek(start)
        while count := src.readinto(buffer):
            yield view[:count]


async def range_decrypt(path: Path, opened: crypto.OpenedHeader, size: int, window: int) -> None:
    object_size = crypto.object_size(size)
    received = 0
    async for piece in crypto.decrypt_range(
        opened,
        file_windows(path, crypto.HEADER_SIZE, window),
        first_index=0,
        plain_start=0,
        plain_end=size,
        object_size=object_size,
    ):
        received += len(piece)
    if received != size:
        raise RuntimeError(f"decrypted {received} bytes, expected {size}")


@dataclass
class Bench:
    """What every phase needs: the settings, the stream, the meter and the result rows."""

    args: argparse.Namespace
    source: PatternSource
    meter: Meter
    rows: dict[str, Row]
    expected_sha256: str

    @property
    def part(self) -> int:
        return int(self.args.part_mib) * MiB

    @property
    def concurrency(self) -> int:
        return int(self.args.concurrency)

    @property
    def chunk(self) -> int:
        return int(self.args.chunk_kib) * 1024

    def measure(self, name: str, action: Callable[[], object]) -> object:
        with self.meter.measure() as run:
            result = action()
        self.rows[name].runs.append(run)
        return result


def run_s3(bench: Bench) -> None:
    """Raw boto3 versus write_encrypted/read_decrypted on S3ObjectStore, same bucket."""
    args, source, part, concurrency = bench.args, bench.source, bench.part, bench.concurrency
    client = s3_client(args, max_pool_connections=max(32, concurrency * 8))
    try:
        with temporary_bucket(client, "bench") as bucket:
            # As the app builds it (web.services.build_store).
            store = S3ObjectStore(
                client=client, bucket=bucket, part_concurrency=concurrency, read_chunk_size=part
            )
            for round_ in range(args.rounds):
                raw_key, cv_key = f"raw-{round_}", f"cv-{round_}"
                sealer, context, dek = new_sealer()
                uploads: list[tuple[str, Callable[[], object]]] = [
                    (
                        RAW_UP,
                        partial(raw_upload, client, bucket, raw_key, source, part, concurrency),
                    ),
                    (
                        CV_UP,
                        partial(
                            anyio.run,
                            partial(
                                encrypt_and_store,
                                store,
                                cv_key,
                                source,
                                chunk=bench.chunk,
                                sealer=sealer,
                                part=part,
                                concurrency=concurrency,
                            ),
                        ),
                    ),
                ]
                # Alternate the order, so neither side always runs on a warmer server.
                results = dict(bench_steps(bench, uploads, reverse=round_ % 2 == 1))
                blob = results[CV_UP]
                assert isinstance(blob, StoredBlob)
                if blob.sha256 != bench.expected_sha256:
                    raise RuntimeError("the stored plaintext hash differs from the stream's")
                opened = crypto.parse_header(blob.header, context, dek)
                downloads: list[tuple[str, Callable[[], object]]] = [
                    (
                        RAW_DOWN,
                        partial(raw_download, client, bucket, raw_key, source, part, concurrency),
                    ),
                    (
                        CV_DOWN,
                        partial(
                            anyio.run,
                            fetch_and_decrypt,
                            store,
                            cv_key,
                            opened,
                            blob.object_size,
                            source.sink(),
                        ),
                    ),
                ]
                bench_steps(bench, downloads, reverse=round_ % 2 == 1)
                # Objects stay until the bucket goes: deleting them now would set RGW's
                # garbage collector to work during the next round.
    finally:
        client.close()


def bench_steps(
    bench: Bench, steps: list[tuple[str, Callable[[], object]]], *, reverse: bool
) -> list[tuple[str, object]]:
    return [
        (name, bench.measure(name, action))
        for name, action in (reversed(steps) if reverse else steps)
    ]


def run_local(bench: Bench, work: Path) -> None:
    """A plain file versus write_encrypted/read_decrypted on LocalObjectStore."""
    source, chunk = bench.source, bench.chunk
    plain = work / "plain.bin"
    (work / "objects").mkdir()
    local = LocalObjectStore(work / "objects")  # as the app builds it: 1 MiB reads
    for round_ in range(bench.args.rounds):
        key = f"local-{round_}"
        bench.measure(FILE_WRITE, partial(write_plain_file, plain, source, chunk))
        sealer, context, dek = new_sealer()
        stored = bench.measure(
            LOCAL_UP,
            partial(
                anyio.run,
                partial(
                    encrypt_and_store,
                    local,
                    key,
                    source,
                    chunk=chunk,
                    sealer=sealer,
                    part=bench.part,
                    concurrency=bench.concurrency,
                ),
            ),
        )
        assert isinstance(stored, StoredBlob)
        if stored.sha256 != bench.expected_sha256:
            raise RuntimeError("the stored plaintext hash differs from the stream's")
        bench.measure(FILE_READ, partial(read_plain_file, plain, source, MiB))
        opened = crypto.parse_header(stored.header, context, dek)
        bench.measure(
            LOCAL_DOWN,
            partial(
                anyio.run, fetch_and_decrypt, local, key, opened, stored.object_size, source.sink()
            ),
        )
        plain.unlink()
        anyio.run(local.delete, key)


def run_cpu(bench: Bench, work: Path) -> None:
    """Bare AES-256-GCM versus the streaming encryptor and decryptor, no I/O."""
    source, chunk = bench.source, bench.chunk
    ciphertext = work / "ciphertext.bin"
    opened = write_ciphertext(ciphertext, source, chunk)
    for _ in range(bench.args.rounds):
        bench.measure(AES_ENC, partial(bare_encrypt, source))
        bench.measure(SHA, partial(sha256_alone, source, chunk))
        bench.measure(PIPELINE, partial(pipeline_encrypt, source, chunk))
        bench.measure(AES_DEC, partial(bare_decrypt, source))
        window = bench.part  # as S3ObjectStore reads: one part per ranged GET
        bench.measure(
            RANGE_DEC, partial(anyio.run, range_decrypt, ciphertext, opened, source.size, window)
        )
    ciphertext.unlink()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    source = PatternSource(args.size_mib * MiB)
    me = psutil.Process()
    rows = {
        name: Row(name, source.size, baseline)
        for name, baseline in [
            (RAW_UP, None),
            (CV_UP, RAW_UP),
            (RAW_DOWN, None),
            (CV_DOWN, RAW_DOWN),
            (FILE_WRITE, None),
            (LOCAL_UP, FILE_WRITE),
            (FILE_READ, None),
            (LOCAL_DOWN, FILE_READ),
            (AES_ENC, None),
            # The plaintext SHA-256 is part of the API, so it bounds the pipeline.
            (SHA, None),
            (PIPELINE, SHA),
            (AES_DEC, None),
            (RANGE_DEC, AES_DEC),
        ]
    }
    print(f"# Encrypted storage pipeline, {args.size_mib} MiB")
    print()
    print(f"Machine: {describe_machine()}")
    print(
        f"Part size {args.part_mib} MiB, concurrency {args.concurrency}, input pieces of "
        f"{args.chunk_kib} KiB, {args.rounds} round(s); S3 endpoint {args.endpoint}"
    )
    print()
    meter = Meter(rss={"bench": me}, cpu={"bench": [me], "s3": rgw_processes()}, settle="s3")
    bench = Bench(args, source, meter, rows, source.sha256())
    try:
        if "s3" in args.phases:
            run_s3(bench)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            if "local" in args.phases:
                run_local(bench, Path(tmp))
            if "cpu" in args.phases:
                run_cpu(bench, Path(tmp))
    finally:
        meter.close()

    table = [row for row in rows.values() if row.runs]
    print_table(
        table,
        rss="bench",
        rss_title="Peak RSS MiB",
        cpu=["bench", "s3"],
        cpu_title="CPU s (bench / S3 daemons)",
    )
    print()
    print(
        "MB/s = 10^6 bytes/s of plaintext, median of the rounds. Peak RSS of this process, "
        "sampled every 50 ms (in brackets: at the start of the phase). CPU s: user+system "
        "seconds of this process and of the RGW cluster's daemons during the phase."
    )
    print()
    print("Targets:")
    checks = [
        ("encrypt+store vs raw boto3 upload", CV_UP, RAW_UP, 0.8),
        ("fetch+decrypt vs raw boto3 download", CV_DOWN, RAW_DOWN, 0.8),
        ("crypto pipeline vs SHA-256 alone", PIPELINE, SHA, 0.9),
    ]
    for label, phase, baseline, target in checks:
        if rows[phase].runs and rows[baseline].runs:
            value = ratio(table, phase, baseline)
            verdict = "met" if value >= target else "MISSED"
            print(f"- {label}: {value:.0%} (target ≥ {target:.0%}): {verdict}")
    peak = max((rows[name].peak("bench") or 0) for name in OURS)
    verdict = "met" if peak < RSS_LIMIT_MIB * MiB else "MISSED"
    print(
        f"- peak RSS of the ClientVault phases: {peak / MiB:.0f} MiB "
        f"(target < {RSS_LIMIT_MIB} MiB): {verdict}"
    )
    print()
    print("Command:")
    print()
    print(f"    {command_line('bench.crypto_storage', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
