"""The audit log at scale on PostgreSQL: searches, a full export, checkpoints and proofs.

    python -m bench.audit [--events 1000000] [--runs 20] [--depth 100] [--proofs 50]
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

In a new database on the server of `--dsn` (dropped at the end), `clientvault init` makes
the schema; then `--events` events go in with COPY, each with its real seq, prev and leaf
hash (`vault.audit.leaf_hash`), spread over the past year across 2,000 clients, 5,000
people and 200,000 documents (a few of each far busier than the rest), with a mix of
actions and outcomes. One large client is planted with 15 % of the events, and one of its
documents with 2 %, so that every search has a target with more than `--depth` pages.
Then:

- the stored Merkle subtree hashes are built, a signed checkpoint is written and inclusion
  and consistency proofs are made at the full size, through `vault.audit.checkpoints` and
  `vault.audit.tree`, as the server does;
- `clientvault serve` serves the database, and an auditor's token runs `GET /api/v1/audit`
  searches (a client over the last 30 days; one document; one person; `document.*` with an
  outcome): the first page for targets drawn as the events were (mostly quiet ones), and the
  page reached after following `next_cursor` `--depth` times for the busiest target of each
  kind (the planted client and document, the busiest person);
- `GET /api/v1/audit/export?format=jsonl` streams every event while the server's RSS is
  sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psutil

from bench.audit_events import DOCUMENTS, HOT_CLIENT, HOT_DOCUMENT, World, fill, make_world, skewed
from bench.common import MiB
from bench.measure import Meter
from bench.report import command_line, describe_machine, percentile
from bench.server import (
    add_dsn_argument,
    cli,
    free_port,
    run_server,
    scratch_database,
    write_config,
)
from vault.audit import checkpoints
from vault.audit import tree as audit_tree
from vault.db import transaction
from web.services import open_services
from web.settings import load_settings

SEARCH_TARGET_MS = 300
EXPORT_TARGET_MIB = 200
AUDITOR_EMAIL = "auditor@bench.example"


# --- Tree, checkpoint and proofs (in this process, as the server does them) --------------------


def _summary(samples: Sequence[float]) -> str:
    p50, p95 = percentile(samples, 0.5) * 1000, percentile(samples, 0.95) * 1000
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


async def tree_phase(config: Path, proofs: int, seed: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with open_services(load_settings(config)) as svc:
        began = time.perf_counter()
        async with transaction(svc.sessions) as session:
            stored = await audit_tree.extend(session)
        rows.append((f"first build of the stored subtree hashes ({stored:,} leaves)", _secs(began)))
        began = time.perf_counter()
        note = await checkpoints.write(svc.sessions, svc.store, svc.checkpoint_signer)
        assert note is not None
        rows.append(("signed checkpoint written (local object store)", _secs(began)))
        async with transaction(svc.sessions) as session:
            size = await audit_tree.log_size(session)
        rng = random.Random(seed)
        inclusion: list[float] = []
        consistency: list[float] = []
        for _ in range(proofs):
            async with transaction(svc.sessions) as session:
                began = time.perf_counter()
                reader = await audit_tree.TreeReader.open(session)  # cold, as a request
                await reader.inclusion(rng.randrange(size), size)
                inclusion.append(time.perf_counter() - began)
            async with transaction(svc.sessions) as session:
                began = time.perf_counter()
                reader = await audit_tree.TreeReader.open(session)
                await reader.consistency(rng.randrange(1, size), size)
                consistency.append(time.perf_counter() - began)
        rows.append((f"inclusion proof at {size:,}, {proofs} random leaves", _summary(inclusion)))
        rows.append(
            (f"consistency proof to {size:,}, {proofs} random sizes", _summary(consistency))
        )
    return rows


def _secs(began: float) -> str:
    spent = time.perf_counter() - began
    return f"{spent:.2f} s" if spent >= 1 else f"{spent * 1000:.0f} ms"


# --- Searches and the export, over HTTP --------------------------------------------------------


@dataclass
class Search:
    name: str
    first: list[float]
    deep: list[float]
    depths: list[int]


def search_params(
    world: World, rng: random.Random
) -> dict[str, tuple[Iterator[dict[str, str]], dict[str, str]]]:
    """Per kind of search: drawn targets for the first page, and the busiest target to page
    deep into."""
    since = (world.end - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Targets drawn as the events were, so busy clients, people and documents come up
    # as often as an auditor would look at them.
    def pick(values: list[str]) -> str:
        return rng.choices(values, skewed(len(values)))[0]

    def clients() -> Iterator[dict[str, str]]:
        while True:
            doc = rng.choices(range(DOCUMENTS), skewed(DOCUMENTS))[0]
            yield {"client_id": world.clients[world.document_client[doc]], "since": since}

    def documents() -> Iterator[dict[str, str]]:
        while True:
            yield {"document_id": pick(world.documents)}

    def people() -> Iterator[dict[str, str]]:
        while True:
            yield {"actor": pick(world.people)}

    def groups() -> Iterator[dict[str, str]]:
        while True:
            yield {"action": "document.*", "outcome": rng.choice(("denied", "failure"))}

    return {
        "client + last 30 days": (
            clients(),
            {"client_id": world.clients[HOT_CLIENT], "since": since},
        ),
        "one document": (documents(), {"document_id": world.documents[HOT_DOCUMENT]}),
        # The skewed draw makes the first person the busiest (about 1 % of the events).
        "one person": (people(), {"actor": world.people[0]}),
        "document.* + outcome": (groups(), {"action": "document.*", "outcome": "denied"}),
    }


def run_searches(
    http: httpx.Client, world: World, runs: int, depth: int, seed: int
) -> list[Search]:
    rng = random.Random(seed)
    results = []
    for name, (drawn, busiest) in search_params(world, rng).items():
        search = Search(name, [], [], [])
        for _ in range(runs):
            search.first.append(_timed_page(http, next(drawn), None)[0])
            cursor: str | None = None
            for page in range(depth + 1):
                spent, cursor = _timed_page(http, busiest, cursor)
                if page == depth or cursor is None:
                    search.deep.append(spent)
                    search.depths.append(page + 1)
                    break
        results.append(search)
        print(f"  {name}: first page {_summary(search.first)}; deep {_summary(search.deep)}")
    return results


def _timed_page(
    http: httpx.Client, query: dict[str, str], cursor: str | None
) -> tuple[float, str | None]:
    """Seconds for one page of a search, and the cursor to the next."""
    began = time.perf_counter()
    answer = http.get("/api/v1/audit", params={**query, **({"cursor": cursor} if cursor else {})})
    spent = time.perf_counter() - began
    answer.raise_for_status()
    return spent, answer.json()["next_cursor"]


def run_export(http: httpx.Client, server: psutil.Process) -> tuple[int, float, int, int]:
    """Events, seconds, server peak RSS and server RSS at the start (bytes)."""
    meter = Meter(rss={"server": server}, cpu={"server": [server]})
    try:
        with meter.measure() as measured:
            events = 0
            with http.stream("GET", "/api/v1/audit/export", params={"format": "jsonl"}) as answer:
                answer.raise_for_status()
                for line in answer.iter_lines():
                    if line.startswith('{"action"'):
                        events += 1
    finally:
        meter.close()
    return events, measured.seconds, measured.peak_rss["server"], measured.start_rss["server"]


# --- Set-up ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="searches of each kind")
    parser.add_argument("--depth", type=int, default=100, help="pages to follow")
    parser.add_argument("--proofs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=12)
    add_dsn_argument(parser)
    parser.add_argument("--keep", action="store_true", help="keep the database for EXPLAIN")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    print(f"command: {command_line('bench.audit', argv)}")
    print(f"machine: {describe_machine()}")
    world = make_world(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="cv-bench-audit-") as tmp,
        scratch_database(args.dsn, keep=args.keep) as dsn,
    ):
        work = Path(tmp)
        port = free_port()
        config = write_config(work, dsn, port)
        cli(config, "init")
        began = time.perf_counter()
        head = fill(dsn, world, args.events, seed=args.seed)
        print(
            f"filled {args.events:,} events (hashes, COPY, VACUUM ANALYZE) in {_secs(began)}; "
            f"head {head:,}"
        )
        for label, value in asyncio.run(tree_phase(config, args.proofs, args.seed)):
            print(f"  {label}: {value}")
        cli(config, "user", "add", AUDITOR_EMAIL, "--role", "auditor")
        token = cli(config, "token", "create", AUDITOR_EMAIL, "--name", "bench", "--read-only")
        with (
            run_server(config, port, work / "server.log") as server,
            httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=httpx.Timeout(600),
            ) as http,
        ):
            print(f"searches ({args.runs} of each, up to {args.depth} pages deep):")
            searches = run_searches(http, world, args.runs, args.depth, args.seed)
            events, seconds, peak, start = run_export(http, psutil.Process(server.pid))
        # Other jobs share the machine; their load explains outlying percentiles.
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    print()
    print("| search | first page p50 / p95 ms | busiest target, deep page p50 / p95 ms (page) |")
    print("| --- | ---: | ---: |")
    verdicts = []
    for s in searches:
        deepest = sorted(s.depths)[len(s.depths) // 2]
        print(f"| {s.name} | {_pair(s.first)} | {_pair(s.deep)} ({deepest}) |")
        worst = max(percentile(s.first, 0.95), percentile(s.deep, 0.95)) * 1000
        verdicts.append(
            (f"{s.name}: p95 {worst:.0f} ms", f"< {SEARCH_TARGET_MS} ms", worst < SEARCH_TARGET_MS)
        )
    print(
        f"\nJSONL export: {events:,} events in {seconds:.1f} s, {events / seconds:,.0f} events/s, "
        f"server peak RSS {peak / MiB:.0f} MiB (from {start / MiB:.0f})\n"
    )
    verdicts.append(
        (
            f"export server peak RSS {peak / MiB:.0f} MiB",
            f"< {EXPORT_TARGET_MIB} MiB",
            peak / MiB < EXPORT_TARGET_MIB,
        )
    )
    for label, target, met in verdicts:
        print(f"- {label} (target {target}): {'met' if met else 'MISSED'}")
    return 0 if all(met for *_, met in verdicts) else 1


def _pair(samples: Sequence[float]) -> str:
    return f"{percentile(samples, 0.5) * 1000:.0f} / {percentile(samples, 0.95) * 1000:.0f}"


if __name__ == "__main__":
    sys.exit(main())
