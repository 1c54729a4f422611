"""The report of the resumable-upload benchmark: one result per phase and size, the
table in MiB/s, memory flatness and the target against Nextcloud."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import MiB
from bench.report import Row, cpu_cell
from bench.tus_client import Upload

# Nextcloud with server-side encryption on the same machine, 1 GiB in 10 MiB chunks.
NEXTCLOUD_UP_MIB_S = 56.0
NEXTCLOUD_DOWN_MIB_S = 65.0
TARGET_FACTOR = 4.0


@dataclass
class Result:
    """The rows of one phase and size: baseline up, tus up, baseline down, API down, and
    (S3) a raw upload with more parts in flight, for reference."""

    phase: str
    gib: float
    rows: list[Row]
    upload: Upload


def label(gib: float) -> str:
    return f"{gib:g} GiB"


def mib_s(row: Row) -> float:
    return row.size / row.seconds / MiB


def print_results(results: list[Result]) -> None:
    header = ["Phase", "MiB/s", "vs baseline", "Server peak RSS MiB", "CPU s (client/server/S3)"]
    lines = [header, ["---", "---:", "---", "---:", "---:"]]
    for result in results:
        by_phase = {row.phase: row for row in result.rows}
        for index, row in enumerate(result.rows):
            if row.baseline is None:
                versus, rss = "reference" if index == 4 else "baseline", ""
            else:
                versus = f"{mib_s(row) / mib_s(by_phase[row.baseline]):.0%}"
                peak, start = row.peak("server"), row.start("server")
                rss = f"{(peak or 0) / MiB:.0f} (from {(start or 0) / MiB:.0f})"
            lines.append(
                [
                    row.phase,
                    f"{mib_s(row):,.0f}",
                    versus,
                    rss,
                    cpu_cell(row, ["client", "server", "s3"]),
                ]
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")


def print_summary(results: list[Result], chunk_note: str) -> None:
    print()
    print(
        "MiB/s = 2^20 bytes/s of plaintext, one run each. The tus upload row runs from the "
        "POST to the answer of the final PATCH, which includes the server's verifying re-read "
        "of the stored object where it is made. The API download is checked as it arrives as the "
        "raw download is, block by block against the generator (the SHA-256 the server "
        "recorded is checked after the upload). "
        "Server RSS sampled every 50 ms (in brackets: at the start). CPU s: user+system "
        f"seconds of this process, the server process and the RGW daemons. {chunk_note}"
    )
    references = [result for result in results if len(result.rows) > 4]
    if references:
        print()
        print("tus upload against the raw upload with more parts in flight (reference):")
        for result in references:
            tus, wider = result.rows[1], result.rows[4]
            print(f"- {result.phase}, {label(result.gib)}: {mib_s(tus) / mib_s(wider):.0%}")
    print()
    print("Server peak RSS, small vs big file (memory flatness):")
    phases = sorted({result.phase for result in results}, key=["local", "s3"].index)
    for phase in phases:
        mine = [result for result in results if result.phase == phase]
        for kind, index in (("tus upload", 1), ("API download", 3)):
            cells = [
                f"{label(result.gib)}: {(result.rows[index].peak('server') or 0) / MiB:.0f} MiB"
                for result in mine
            ]
            print(f"- {phase}, {kind}: " + ", ".join(cells))
    print()
    print(
        f"Target: ≥ {TARGET_FACTOR:g}× Nextcloud with server-side encryption on this machine "
        f"({NEXTCLOUD_UP_MIB_S:g} MiB/s in, {NEXTCLOUD_DOWN_MIB_S:g} MiB/s out, 1 GiB in 10 MiB "
        "chunks), on the local backend:"
    )
    for result in results:
        if result.phase != "local":
            continue
        for kind, row, reference in (
            ("upload", result.rows[1], NEXTCLOUD_UP_MIB_S),
            ("download", result.rows[3], NEXTCLOUD_DOWN_MIB_S),
        ):
            rate = mib_s(row)
            verdict = "met" if rate >= TARGET_FACTOR * reference else "MISSED"
            print(
                f"- {kind}, {label(result.gib)}: {rate:,.0f} MiB/s = {rate / reference:.1f}× "
                f"(target ≥ {TARGET_FACTOR * reference:.0f} MiB/s): {verdict}"
            )
