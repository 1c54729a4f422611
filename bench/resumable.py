"""Resumable (tus) uploads of big files through a real server, against plain baselines.

    python -m bench.resumable [--size-gib 5] [--small-gib 1] [--phases local,s3]
        [--chunk-mib N] [--endpoint URL --access-key K --secret-key S]

For each phase the benchmark writes a config (SQLite in a temporary directory), runs
`clientvault init`, creates a client, a staff user and a token with the CLI, starts
`clientvault serve` and creates a folder through the API. Then,
for `--small-gib` (the memory-flatness check; 0 skips it) and for `--size-gib`:

- upload through tus as the browser does: `POST /api/v1/uploads` with `Upload-Length` and
  `Upload-Metadata` (filename, folder_id), then `PATCH`es of `--chunk-mib` (default: the
  server's `ClientVault-Chunk-Size`), each continuing from the `Upload-Offset` answered. The
  bytes come from a generator (`PatternSource`) and are never held whole;
- check the SHA-256 the server recorded against the generator's, then download it (`GET
  /api/v1/documents/{id}/content`), checking every block against the generator as it
  arrives, exactly as the raw download's bytes are checked.

Baselines, in the same run and on the same storage:

- phase `local` (`[storage].backend = "local"`): writing the same bytes to a file in the
  same directory as the server's data, with fsync, then reading it back;
- phase `s3` (`[storage].backend = "s3"`, a new bucket): raw boto3 `upload_fileobj` and
  `download_fileobj` of the same bytes with the server's part size and concurrency: as many
  parts in flight as a tus `PATCH` stores at once (`vault.uploads.append.STORE_CONCURRENCY`)
  for the upload, and as many ranged GETs as the server's `[storage].concurrency` for the
  download. A second raw upload with the download's concurrency is shown for reference. The
  S3 endpoint and keys default to $CLIENTVAULT_TEST_S3_ENDPOINT, _ACCESS_KEY and
  _SECRET_KEY, as `scripts/rgw start` exports them; without them the phase is skipped. The
  objects stay until the bucket goes, so the RGW needs room for 3 × (size + small size):
  start it with `CLIENTVAULT_RGW_OSD_SIZE_GB=40` for the defaults.

The server's RSS is sampled every 50 ms; CPU seconds are counted for this process (the
client), the server and the RGW cluster's daemons.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil

from bench.common import (
    ENV_ACCESS_KEY,
    ENV_ENDPOINT,
    ENV_SECRET_KEY,
    MiB,
    PatternSource,
    add_s3_arguments,
    raw_download,
    raw_upload,
    s3_client,
    temporary_bucket,
)
from bench.measure import Meter, rgw_processes
from bench.report import Row, command_line, describe_machine
from bench.resumable_report import Result, label, print_results, print_summary
from bench.server import cli, expect, free_port, run_server
from bench.tus_client import PIECE, check_recorded_hash, checked_download, tus_upload
from vault.uploads.append import STORE_CONCURRENCY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GiB = 1 << 30
EMAIL = "bench@example.test"
PART_MIB = 8  # the server's default part size
CONCURRENCY = 4  # the server's default ranged GETs in flight ([storage].concurrency)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.resumable",
        description="tus uploads and downloads of big files on a real server, against a plain "
        "file copy (local store) and raw boto3 (S3) in the same run.",
    )
    parser.add_argument("--size-gib", type=float, default=5, help="big file (default 5)")
    parser.add_argument(
        "--small-gib",
        type=float,
        default=1,
        help="smaller file first, for RSS (default 1; 0: none)",
    )
    parser.add_argument("--phases", default="local,s3", help="local, s3 or both (default)")
    parser.add_argument(
        "--chunk-mib", type=int, default=0, help="PATCH size (default: what the server advertises)"
    )
    add_s3_arguments(parser)
    args = parser.parse_args(argv)
    phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    if not phases or any(phase not in ("local", "s3") for phase in phases):
        parser.error("--phases takes local, s3 or local,s3")
    args.phases = phases
    if args.size_gib <= 0 or args.small_gib < 0 or args.chunk_mib < 0:
        parser.error("--size-gib > 0, --small-gib ≥ 0, --chunk-mib ≥ 0")
    return args


# --- Set-up -----------------------------------------------------------------------------------


def write_config(work: Path, port: int, storage: dict[str, str | int]) -> Path:
    """A config with SQLite in `work/data` and the given `[storage]` section."""

    def toml_string(text: str) -> str:
        return json.dumps(text)  # a JSON string of ASCII text is a TOML basic string

    def value(item: str | int) -> str:
        return str(item) if isinstance(item, int) else toml_string(item)

    lines = [
        f"data_dir = {toml_string(str(work / 'data'))}",
        "",
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"public_url = {toml_string(f'http://127.0.0.1:{port}')}",
        "",
        "[storage]",
        *(f"{key} = {value(item)}" for key, item in storage.items()),
    ]
    config = work / "clientvault.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@contextlib.contextmanager
def live_server(
    work: Path, storage: dict[str, str | int]
) -> Iterator[tuple[httpx.Client, str, int]]:
    """A configured, running server: an authenticated client, a folder id and its pid."""
    port = free_port()
    config = write_config(work, port, storage)
    cli(config, "init")
    client_id = cli(config, "client", "add", "Bench")
    cli(config, "user", "add", EMAIL, "--role", "staff", "--client", "Bench")
    token = cli(config, "token", "create", EMAIL, "--name", "bench")
    with (
        run_server(config, port, work / "server.log") as server,
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(900),
        ) as http,
    ):
        folder: str = expect(
            http.post("/api/v1/folders", json={"client_id": client_id, "name": "Uploads"}), 201
        )["id"]
        yield http, folder, server.pid


# --- Plain-file baseline ----------------------------------------------------------------------


def file_write(path: Path, source: PatternSource) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for data in source.chunks(PIECE):
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_read(path: Path, size: int) -> None:
    buffer = bytearray(PIECE)
    received = 0
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            received += count
    if received != size:
        raise RuntimeError(f"read {received} bytes, expected {size}")


# --- Phases -----------------------------------------------------------------------------------


def run_sizes(
    phase: str,
    sizes: list[float],
    http: httpx.Client,
    folder: str,
    meter: Meter,
    chunk_mib: int,
    base_names: tuple[str, str],
    base_up: Callable[[PatternSource, str], None],
    base_down: Callable[[PatternSource, str], None],
    reference_up: tuple[str, Callable[[PatternSource, str], None]] | None = None,
) -> list[Result]:
    results = []
    for index, gib in enumerate(sizes):
        size = int(gib * GiB)
        source = PatternSource(size, seed=index)
        expected = source.sha256()
        key = f"big-{index}.bin"
        rows = [
            Row(f"{phase}: {base_names[0]}, {label(gib)}", size),
            Row(f"{phase}: tus upload, {label(gib)}", size),
            Row(f"{phase}: {base_names[1]}, {label(gib)}", size),
            Row(f"{phase}: API download, {label(gib)}", size),
        ]
        rows[1].baseline = rows[0].phase
        rows[3].baseline = rows[2].phase
        print(f"{phase}, {label(gib)}: uploading…", flush=True)
        with meter.measure() as run:
            base_up(source, key)
        rows[0].runs.append(run)
        if reference_up is not None:
            rows.append(Row(f"{phase}: {reference_up[0]}, {label(gib)}", size))
            with meter.measure() as run:
                reference_up[1](source, key)
            rows[4].runs.append(run)
        with meter.measure() as run:
            upload = tus_upload(http, folder, key, source, chunk_mib)
        rows[1].runs.append(run)
        check_recorded_hash(http, upload.document, expected)
        print(f"{phase}, {label(gib)}: downloading…", flush=True)
        with meter.measure() as run:
            base_down(source, key)
        rows[2].runs.append(run)
        with meter.measure() as run:
            checked_download(http, upload.document, source)
        rows[3].runs.append(run)
        results.append(Result(phase, gib, rows, upload))
    return results


def local_phase(sizes: list[float], chunk_mib: int) -> list[Result]:
    me = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="bench-resumable-") as tmp:
        work = Path(tmp).resolve()
        storage: dict[str, str | int] = {"backend": "local", "part_size_mib": PART_MIB}
        with live_server(work, storage) as (http, folder, pid):
            server = psutil.Process(pid)
            meter = Meter(rss={"server": server}, cpu={"client": [me], "server": [server]})
            plain = work / "plain.bin"

            def up(source: PatternSource, key: str) -> None:
                file_write(plain, source)

            def down(source: PatternSource, key: str) -> None:
                file_read(plain, source.size)
                plain.unlink()

            try:
                return run_sizes(
                    "local",
                    sizes,
                    http,
                    folder,
                    meter,
                    chunk_mib,
                    ("file write+fsync", "file read"),
                    up,
                    down,
                )
            finally:
                meter.close()


def s3_phase(args: argparse.Namespace, sizes: list[float]) -> list[Result]:
    me = psutil.Process()
    part = PART_MIB * MiB
    s3: S3Client = s3_client(args, max_pool_connections=32)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-resumable-") as tmp,
            temporary_bucket(s3, "bench-resumable") as bucket,
        ):
            work = Path(tmp)
            secret = work / "s3-secret"
            secret.touch(mode=0o600)
            secret.write_text(args.secret_key, encoding="utf-8")
            storage: dict[str, str | int] = {
                "backend": "s3",
                "endpoint_url": args.endpoint,
                "region": args.region,
                "bucket": bucket,
                "access_key_id": args.access_key,
                "secret_access_key_file": str(secret),
                "part_size_mib": PART_MIB,
                "concurrency": CONCURRENCY,
            }
            with live_server(work, storage) as (http, folder, pid):
                server = psutil.Process(pid)
                meter = Meter(
                    rss={"server": server},
                    cpu={"client": [me], "server": [server], "s3": rgw_processes()},
                    settle="s3",
                )

                def up(source: PatternSource, key: str) -> None:
                    raw_upload(s3, bucket, f"raw-{key}", source, part, STORE_CONCURRENCY)

                def up_reference(source: PatternSource, key: str) -> None:
                    raw_upload(s3, bucket, f"raw4-{key}", source, part, CONCURRENCY)

                def down(source: PatternSource, key: str) -> None:
                    raw_download(s3, bucket, f"raw-{key}", source, part, CONCURRENCY)

                try:
                    return run_sizes(
                        "s3",
                        sizes,
                        http,
                        folder,
                        meter,
                        args.chunk_mib,
                        (
                            f"raw boto3 upload, {STORE_CONCURRENCY} in flight",
                            f"raw boto3 download, {CONCURRENCY} in flight",
                        ),
                        up,
                        down,
                        (f"raw boto3 upload, {CONCURRENCY} in flight (reference)", up_reference),
                    )
                finally:
                    meter.close()
    finally:
        s3.close()


# --- Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sizes = [gib for gib in (args.small_gib, args.size_gib) if gib > 0]
    print(f"# Resumable (tus) uploads, {' and '.join(label(gib) for gib in sizes)}")
    print()
    print(f"Machine: {describe_machine()}")
    print(
        f"Server: clientvault serve, 1 worker, SQLite; {PART_MIB} MiB parts, "
        f"{STORE_CONCURRENCY} stored at once per PATCH, {CONCURRENCY} ranged GETs in flight "
        f"per download; "
        f"PATCH size: {f'{args.chunk_mib} MiB' if args.chunk_mib else 'as advertised'}"
    )
    print()
    results: list[Result] = []
    if "local" in args.phases:
        results += local_phase(sizes, args.chunk_mib)
    if "s3" in args.phases:
        if args.endpoint and args.access_key and args.secret_key:
            results += s3_phase(args, sizes)
        else:
            print(
                f"Skipping the s3 phase: no S3 endpoint and keys (--endpoint/--access-key/"
                f"--secret-key or ${ENV_ENDPOINT}, ${ENV_ACCESS_KEY}, ${ENV_SECRET_KEY}; "
                "see scripts/rgw)."
            )
    if not results:
        return 1
    print()
    print_results(results)
    chunks = sorted({result.upload.chunk for result in results})
    requests = ", ".join(
        f"{result.phase} {label(result.gib)}: {result.upload.requests}" for result in results
    )
    print_summary(
        results,
        f"PATCH size {' / '.join(f'{chunk // MiB} MiB' for chunk in chunks)}; "
        f"PATCH requests: {requests}.",
    )
    print()
    print("Command:")
    print()
    print(f"    {command_line('bench.resumable', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
