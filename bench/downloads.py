"""Downloads only, repeated from one server, against raw boto3 on the same S3 in the same run.

    python -m bench.downloads [--size-mib 1024] [--rounds 3] [--parallel 20]
        [--parallel-mib 50] [--part-mib 8] [--concurrency 4] [--workers 1]
        [--endpoint URL --access-key K --secret-key S]

The set-up is `bench.api`'s: a config on the S3 backend (a new bucket) with SQLite, `clientvault
init`, a client, a staff user and a token, and `clientvault serve`. It then stores one
`--size-mib` document and `--parallel` documents of `--parallel-mib` through the API, and the
same bytes as raw objects, and measures `--rounds` times, alternating which goes first:

- one download of the big document (`GET /api/v1/documents/{id}/content`) against raw boto3
  `download_fileobj` of the same bytes with the server's part size and concurrency;
- the `--parallel` documents downloaded at once, against as many raw boto3 downloads at once.

Nothing is uploaded between rounds, so a change to the download path is measured with less
of the drift that a 1 GiB upload per round brings into `bench.api`. Every download is checked
as it arrives, block by block against the generator, the raw ones as the API's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench.api_phases import api_upload, print_server_table, running_server
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
from bench.report import Row, command_line, describe_machine
from bench.tus_client import checked_download, checked_downloads_at_once


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.downloads",
        description="ClientVault's downloads on a real server versus raw boto3 on the same S3.",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="big download (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--parallel", type=int, default=20, help="concurrent downloads")
    parser.add_argument("--parallel-mib", type=int, default=50, help="size of each of them")
    parser.add_argument("--part-mib", type=int, default=8, help="part size (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="GETs in flight (default 4)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    add_s3_arguments(parser)
    args = parser.parse_args(argv)
    check_s3_arguments(parser, args)
    if min(args.size_mib, args.rounds, args.parallel, args.parallel_mib, args.workers) < 1:
        parser.error("--size-mib, --rounds, --parallel, --parallel-mib, --workers ≥ 1")
    if args.part_mib < 5 or args.concurrency < 1:
        parser.error("--part-mib ≥ 5, --concurrency ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    part = args.part_mib * MiB
    big = PatternSource(args.size_mib * MiB)
    small = PatternSource(args.parallel_mib * MiB, seed=1)
    together = f"{args.parallel}×{args.parallel_mib} MiB at once"
    raw_big, api_big = "raw boto3 download", "API download (GET)"
    raw_par, api_par = f"raw boto3, {together}", f"API, {together}"
    rows = [
        Row(raw_big, big.size),
        Row(api_big, big.size, raw_big),
        Row(raw_par, args.parallel * small.size),
        Row(api_par, args.parallel * small.size, raw_par),
    ]
    by_phase = {row.phase: row for row in rows}
    print(f"# Downloads, {args.size_mib} MiB and {together}")
    print()
    print(f"Machine: {describe_machine()}")
    print(
        f"Part size {args.part_mib} MiB, {args.concurrency} GETs in flight, {args.rounds} "
        f"round(s); S3 endpoint {args.endpoint}; "
        f"server: clientvault serve, {args.workers} worker(s)"
    )
    print()
    s3 = s3_client(args, max_pool_connections=max(32, args.parallel * args.concurrency))
    try:
        with running_server(args, s3, "bench-downloads") as running:
            http, meter, bucket = running.http, running.meter, running.bucket
            folder = running.folder("D")
            document = api_upload(http, folder, "big.bin", big, MiB)
            raw_upload(s3, bucket, "big", big, part, args.concurrency)
            documents, keys = [], [f"par-{i}" for i in range(args.parallel)]
            for key in keys:
                documents.append(api_upload(http, folder, f"{key}.bin", small, MiB))
                raw_upload(s3, bucket, key, small, part, args.concurrency)

            def measured(phase: str, run: Callable[[], None]) -> Callable[[], None]:
                def step() -> None:
                    with meter.measure() as result:
                        run()
                    by_phase[phase].runs.append(result)

                return step

            pairs = [
                (
                    measured(
                        raw_big,
                        lambda: raw_download(s3, bucket, "big", big, part, args.concurrency),
                    ),
                    measured(api_big, lambda: checked_download(http, document, big)),
                ),
                (
                    measured(
                        raw_par,
                        lambda: raw_downloads_at_once(
                            s3, bucket, keys, small, part, args.concurrency
                        ),
                    ),
                    measured(
                        api_par,
                        lambda: checked_downloads_at_once(http, documents, small),
                    ),
                ),
            ]
            for round_ in range(args.rounds):
                for raw, api in pairs:
                    for step in (raw, api) if round_ % 2 == 0 else (api, raw):
                        step()
    finally:
        s3.close()

    print_server_table(rows)
    print()
    print(
        "MB/s = 10^6 bytes/s of plaintext, median of the rounds; the parallel rows: aggregate. "
        "Server RSS sampled every 50 ms (in brackets: at the start), its peak the largest of "
        "the rounds. CPU s: user+system seconds, median of the rounds, of this process (the "
        "client, and boto3 for raw rows), the server and the RGW cluster's daemons."
    )
    print()
    print("Every round, MB/s (and the API's server CPU s and peak RSS MiB):")
    for row in rows:
        rates = ", ".join(f"{row.size / run.seconds / 1e6:,.0f}" for run in row.runs)
        extra = ""
        if row.baseline is not None:
            cpu = ", ".join(f"{run.cpu.get('server') or 0:.2f}" for run in row.runs)
            peaks = ", ".join(f"{run.peak_rss.get('server', 0) / MiB:.0f}" for run in row.runs)
            extra = f" (CPU {cpu}; peak {peaks})"
        print(f"- {row.phase}: {rates}{extra}")
    print()
    print("Command:")
    print()
    print(f"    {command_line('bench.downloads', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
