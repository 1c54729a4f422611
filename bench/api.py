"""The HTTP API end to end, on a real server process over loopback, against raw boto3.

    python -m bench.api [--size-mib 1024] [--part-mib 8] [--concurrency 4]
        [--documents 10000] [--list-requests 50] [--parallel 20] [--parallel-mib 50]
        [--small-files 200] [--small-kib 4]
        [--endpoint URL --access-key K --secret-key S] [--rounds N]

The S3 endpoint and keys default to $CLIENTVAULT_TEST_S3_ENDPOINT, _ACCESS_KEY and
_SECRET_KEY, as `scripts/rgw start` exports them. The benchmark writes a config using the
S3 backend (a new bucket) with SQLite in a temporary directory, runs `clientvault init`,
creates a client, a staff user and a token with the CLI, starts `clientvault serve`, creates
folders through the API, then measures with httpx:

- one `--size-mib` upload (`PUT /api/v1/folders/{id}/files/big.bin`) and download
  (`GET /api/v1/documents/{id}/content`), versus raw boto3 `upload_fileobj` and
  `download_fileobj` of the same bytes with the same part size and concurrency;
- `--parallel` concurrent downloads of distinct `--parallel-mib` documents, versus as many
  concurrent raw boto3 downloads;
- `GET /api/v1/folders/{id}` of a folder of `--documents` documents (created through the
  vault services, each a real encrypted object), `--list-requests` times;
- `--small-files` uploads of `--small-kib` each, one after another, into another folder of
  the same client, through `PUT` and through tus, versus as many raw boto3 `put_object`s.

The server's RSS is sampled every 50 ms; CPU seconds are counted for this process (the
client), the server and the RGW cluster's daemons.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import anyio

from bench.api_phases import (
    SmallFiles,
    api_upload,
    check_hash,
    populate,
    print_server_table,
    running_server,
)
from bench.common import (
    MiB,
    PatternSource,
    add_s3_arguments,
    check_s3_arguments,
    raw_download,
    raw_downloads_at_once,
    raw_upload,
    s3_client,
)
from bench.measure import Measurement
from bench.report import Row, command_line, describe_machine, percentile, ratio
from bench.server import expect
from bench.tus_client import checked_download, checked_downloads_at_once

SERVER_RSS_LIMIT_MIB = 200
LIST_P50_LIMIT_MS = 150

RAW_UP = "raw boto3 upload"
API_UP = "API upload (PUT)"
RAW_DOWN = "raw boto3 download"
API_DOWN = "API download (GET)"
RAW_PAR = "raw boto3 parallel downloads"
API_PAR = "API parallel downloads"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api",
        description="ClientVault's HTTP API on a real server versus raw boto3 on the same S3.",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="big transfer (default 1024)")
    parser.add_argument("--part-mib", type=int, default=8, help="part size (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight (default 4)")
    parser.add_argument(
        "--chunk-kib", type=int, default=1024, help="upload body pieces (default 1024)"
    )
    parser.add_argument("--documents", type=int, default=10_000, help="listed folder size")
    parser.add_argument("--list-requests", type=int, default=50, help="listings timed")
    parser.add_argument("--parallel", type=int, default=20, help="concurrent downloads")
    parser.add_argument("--parallel-mib", type=int, default=50, help="size of each of them")
    parser.add_argument("--small-files", type=int, default=200, help="small uploads (0: none)")
    parser.add_argument("--small-kib", type=int, default=4, help="size of each (default 4)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the transfers")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    add_s3_arguments(parser)
    args = parser.parse_args(argv)
    check_s3_arguments(parser, args)
    if args.size_mib < 1 or args.part_mib < 5 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--size-mib ≥ 1, --part-mib ≥ 5, --concurrency ≥ 1, --rounds ≥ 1")
    if args.parallel < 1 or args.parallel_mib < 1 or args.documents < 0:
        parser.error("--parallel ≥ 1, --parallel-mib ≥ 1, --documents ≥ 0")
    if args.list_requests < 1 or args.chunk_kib < 1 or args.workers < 1:
        parser.error("--list-requests ≥ 1, --chunk-kib ≥ 1, --workers ≥ 1")
    if args.small_files < 0 or args.small_kib < 1:
        parser.error("--small-files ≥ 0, --small-kib ≥ 1")
    return args


# --- Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    size = args.size_mib * MiB
    part = args.part_mib * MiB
    concurrency: int = args.concurrency
    chunk = args.chunk_kib * 1024
    big = PatternSource(size)
    small = PatternSource(args.parallel_mib * MiB, seed=1)
    print(f"# HTTP API, {args.size_mib} MiB transfers")
    print()
    print(f"Machine: {describe_machine()}")
    print(
        f"Part size {args.part_mib} MiB, concurrency {concurrency}, upload body pieces of "
        f"{args.chunk_kib} KiB, {args.rounds} round(s); S3 endpoint {args.endpoint}; "
        f"server: clientvault serve, {args.workers} worker(s), SQLite"
    )
    print()
    expected_big = big.sha256()
    expected_small = small.sha256()
    s3 = s3_client(args, max_pool_connections=max(32, concurrency * 8))
    rows = {
        name: Row(name, size if name in (RAW_UP, API_UP, RAW_DOWN, API_DOWN) else 0, baseline)
        for name, baseline in [
            (RAW_UP, None),
            (API_UP, RAW_UP),
            (RAW_DOWN, None),
            (API_DOWN, RAW_DOWN),
            (RAW_PAR, None),
            (API_PAR, RAW_PAR),
        ]
    }
    rows[RAW_PAR].size = rows[API_PAR].size = args.parallel * small.size
    rows[RAW_PAR].phase = RAW_PAR + f" ({args.parallel}×{args.parallel_mib} MiB)"
    rows[API_PAR].phase = API_PAR + f" ({args.parallel}×{args.parallel_mib} MiB)"
    rows[API_PAR].baseline = rows[RAW_PAR].phase
    latencies: list[float] = []
    listing_run = Measurement()
    listed = 0
    listing_bytes = 0
    populate_seconds = 0.0
    small_files = SmallFiles(args.small_files, args.small_kib * 1024)
    try:
        with running_server(args, s3, "bench-api") as running:
            http, meter, bucket = running.http, running.meter, running.bucket
            folders = {name: running.folder(name) for name in ("Transfers", "Listing")}

            for round_ in range(args.rounds):
                raw_key = f"raw-{round_}"
                document = ""

                def raw_up(key: str = raw_key) -> None:
                    with meter.measure() as run:
                        raw_upload(s3, bucket, key, big, part, concurrency)
                    rows[RAW_UP].runs.append(run)

                def api_up() -> None:
                    nonlocal document
                    with meter.measure() as run:
                        document = api_upload(http, folders["Transfers"], "big.bin", big, chunk)
                    rows[API_UP].runs.append(run)

                for step in (raw_up, api_up) if round_ % 2 == 0 else (api_up, raw_up):
                    step()
                check_hash(http, document, expected_big)

                def raw_down(key: str = raw_key) -> None:
                    with meter.measure() as run:
                        raw_download(s3, bucket, key, big, part, concurrency)
                    rows[RAW_DOWN].runs.append(run)

                def api_down(document: str = document) -> None:
                    with meter.measure() as run:
                        checked_download(http, document, big)
                    rows[API_DOWN].runs.append(run)

                for step in (raw_down, api_down) if round_ % 2 == 0 else (api_down, raw_down):
                    step()
                # Objects stay until the bucket goes (RGW's garbage collector would
                # otherwise run during the next phases).

            # Concurrent downloads of distinct documents (and distinct raw objects).
            raw_keys = [f"par-{i}" for i in range(args.parallel)]
            documents = []
            for index, key in enumerate(raw_keys):
                raw_upload(s3, bucket, key, small, part, concurrency)
                document = api_upload(http, folders["Transfers"], f"par-{index}.bin", small, chunk)
                documents.append(document)
            check_hash(http, documents[0], expected_small)
            for _ in range(args.rounds):
                with meter.measure() as run:
                    raw_downloads_at_once(s3, bucket, raw_keys, small, part, concurrency)
                rows[RAW_PAR].runs.append(run)
                with meter.measure() as run:
                    checked_downloads_at_once(http, documents, small)
                rows[API_PAR].runs.append(run)

            # A folder of many documents, listed over and over.
            began = time.perf_counter()
            anyio.run(populate, running.config, folders["Listing"], args.documents)
            populate_seconds = time.perf_counter() - began
            path = f"/api/v1/folders/{folders['Listing']}"
            for _ in range(2):  # warm-up, not counted
                expect(http.get(path), 200)
            with meter.measure() as listing_run:
                for _ in range(args.list_requests):
                    began = time.perf_counter()
                    response = http.get(path)
                    latencies.append(time.perf_counter() - began)
                    if response.status_code != 200:
                        expect(response, 200)
                    listing_bytes = len(response.content)
            listed = len(response.json()["documents"])
            if listed != args.documents:
                raise RuntimeError(f"listed {listed} documents, expected {args.documents}")
            if small_files.count:
                small_files.run(running, s3, running.folder("Small"), "small")
    finally:
        s3.close()

    table = list(rows.values())
    print_server_table(table)
    print()
    print(
        "MB/s = 10^6 bytes/s of plaintext, median of the rounds; parallel rows: aggregate. "
        "Server RSS sampled every 50 ms (in brackets: at the start of the phase). CPU s: "
        "user+system seconds of this process (the client, and boto3 for raw rows), the "
        "server process and the RGW cluster's daemons during the phase."
    )
    print()
    ms = [value * 1000 for value in latencies]
    server_cpu = listing_run.cpu.get("server")
    per_request = "–" if server_cpu is None else f"{server_cpu / len(ms) * 1000:.0f}"
    print(
        f"Folder listing: GET /api/v1/folders/{{id}} with {listed:,} documents "
        f"({listing_bytes / 1e6:.1f} MB of JSON), {len(ms)} requests after 2 warm-ups; "
        f"folder filled in {populate_seconds:.0f} s"
    )
    print()
    print(
        "| p50 ms | p95 ms | min ms | max ms | mean ms | server CPU ms/request | "
        "server peak RSS MiB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {percentile(ms, 0.5):.0f} | {percentile(ms, 0.95):.0f} | {min(ms):.0f} | "
        f"{max(ms):.0f} | {statistics.fmean(ms):.0f} | {per_request} | "
        f"{listing_run.peak_rss.get('server', 0) / MiB:.0f} |"
    )
    print()
    if small_files.count:
        small_files.print(args.documents + 1 + args.parallel)
        print()
    print("Targets:")
    checks = [
        ("API upload vs raw boto3 upload", ratio(table, API_UP, RAW_UP), 0.75),
        ("API download vs raw boto3 download", ratio(table, API_DOWN, RAW_DOWN), 0.75),
    ]
    for label, value, target in checks:
        verdict = "met" if value >= target else "MISSED"
        print(f"- {label}: {value:.0%} (target ≥ {target:.0%}): {verdict}")
    p50 = percentile(ms, 0.5)
    verdict = "met" if p50 < LIST_P50_LIMIT_MS else "MISSED"
    print(
        f"- listing p50 with {listed:,} documents: {p50:.0f} ms "
        f"(target < {LIST_P50_LIMIT_MS} ms): {verdict}"
    )
    peak = max((rows[name].peak("server") or 0) for name in (API_UP, API_DOWN))
    verdict = "met" if peak < SERVER_RSS_LIMIT_MIB * MiB else "MISSED"
    print(
        f"- server peak RSS through a {args.size_mib} MiB transfer: {peak / MiB:.0f} MiB "
        f"(target < {SERVER_RSS_LIMIT_MIB} MiB): {verdict}"
    )
    print()
    print("Command:")
    print()
    print(f"    {command_line('bench.api', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
