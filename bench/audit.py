"""The audit log at scale on PostgreSQL: searches, a full export, checkpoints and proofs.

    python -m bench.audit [--events 1000000] [--runs 20] [--depth 100] [--proofs 50]
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

In a new database on the server of `--dsn` (dropped at the end), `clientvault init` makes
the schema; then `--events` events go in with COPY, each with its real seq, prev and leaf
hash (`vault.audit.leaf_hash`), spread over the past year across 2,000 clients, 5,000
people and 200,000 documents (a few of each far busier than the rest), with a mix of
actions and outcomes. Then:

- the stored Merkle subtree hashes are built, a signed checkpoint is written and inclusion
  and consistency proofs are made at the full size, through `vault.audit.checkpoints` and
  `vault.audit.tree`, as the server does;
- `python -m uvicorn --factory web.app:create_app` serves the database, and an auditor's
  token runs `GET /api/v1/audit` searches (a client over the last 30 days; one document;
  one person; `document.*` with an outcome): the first page, and the page reached after
  following `next_cursor` `--depth` times (or the last page, when there are fewer);
- `GET /api/v1/audit/export?format=jsonl` streams every event while the server's RSS is
  sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

from bench.common import MiB
from bench.measure import Meter
from bench.report import command_line, describe_machine, percentile
from bench.server import cli, free_port, run_server
from vault import audit
from vault.audit import checkpoints
from vault.audit import tree as audit_tree
from vault.db import transaction
from vault.models import AuditEvent
from web.services import open_services
from web.settings import load_settings

CLIENTS = 2_000
PEOPLE = 5_000
DOCUMENTS = 200_000
STAFF = 150  # the first people are staff, the next few auditors, the rest client users
AUDITORS = 10
SEARCH_TARGET_MS = 300
EXPORT_TARGET_MIB = 200
AUDITOR_EMAIL = "auditor@bench.example"
# (action, weight, about a document?)
ACTIONS = (
    ("document.downloaded", 30, True),
    ("document.viewed", 18, True),
    ("document.previewed", 8, True),
    ("document.uploaded", 7, True),
    ("document.version_added", 3, True),
    ("document.deleted", 1, True),
    ("folder.viewed", 12, False),
    ("folder.created", 1, False),
    ("client.viewed", 8, False),
    ("session.created", 8, False),
    ("session.failed", 2, False),
    ("audit.viewed", 2, False),
)
OUTCOMES = (("success", 94), ("denied", 4), ("failure", 2))
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
    "curl/8.5.0",
)
COLUMNS = (
    "seq",
    "ts",
    "actor_id",
    "actor_role",
    "action",
    "client_id",
    "target_type",
    "target_id",
    "document_id",
    "ip",
    "user_agent",
    "outcome",
    "details",
    "prev_hash",
    "leaf_hash",
)


@dataclass(slots=True)
class Event:
    """The columns `vault.audit.entry` reads, without an ORM object per row."""

    seq: int
    ts: str
    actor_id: str | None
    actor_role: str | None
    action: str
    client_id: str | None
    target_type: str | None
    target_id: str | None
    document_id: str | None
    ip: str | None
    user_agent: str | None
    outcome: str
    details: str
    prev_hash: str
    leaf_hash: str = ""

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


@dataclass(frozen=True, slots=True)
class World:
    clients: list[str]
    people: list[str]
    documents: list[str]
    document_client: list[int]
    person_client: list[int]
    end: datetime


def _ids(rng: random.Random, count: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _skewed(count: int) -> list[float]:
    """Zipf-like weights: a few busy clients, people and documents, a long quiet tail."""
    return [1 / (rank + 10) ** 0.9 for rank in range(count)]


def make_world(seed: int) -> World:
    rng = random.Random(seed)
    return World(
        clients=_ids(rng, CLIENTS),
        people=_ids(rng, PEOPLE),
        documents=_ids(rng, DOCUMENTS),
        document_client=[rng.randrange(CLIENTS) for _ in range(DOCUMENTS)],
        person_client=[rng.randrange(CLIENTS) for _ in range(PEOPLE)],
        end=datetime.now(UTC).replace(microsecond=0),
    )


def generate(world: World, count: int, *, first_seq: int, prev: str, seed: int) -> Iterator[Event]:
    """`count` chained events, oldest first, evenly over the year before `world.end`."""
    rng = random.Random(seed)
    kinds = rng.choices(range(len(ACTIONS)), [a[1] for a in ACTIONS], k=count)
    outcomes = rng.choices([o[0] for o in OUTCOMES], [o[1] for o in OUTCOMES], k=count)
    people = rng.choices(range(PEOPLE), _skewed(PEOPLE), k=count)
    documents = rng.choices(range(DOCUMENTS), _skewed(DOCUMENTS), k=count)
    start = world.end - timedelta(days=365)
    step = timedelta(days=365) / max(count, 1)
    for i in range(count):
        action, _, on_document = ACTIONS[kinds[i]]
        person = people[i]
        role = "staff" if person < STAFF else "auditor" if person < STAFF + AUDITORS else "client"
        document_id = target_type = target_id = None
        details: dict[str, object] = {}
        if on_document:
            doc = documents[i]
            client = world.document_client[doc]
            document_id = target_id = world.documents[doc]
            target_type = "document"
            details = {"version": 1 + doc % 4}
        else:
            client = world.person_client[person] if role == "client" else rng.randrange(CLIENTS)
            target_type, target_id = "client", world.clients[client]
        event = Event(
            seq=first_seq + i,
            ts=audit.timestamp(start + step * i),
            actor_id=world.people[person],
            actor_role=role,
            action=action,
            client_id=world.clients[client] if action != "audit.viewed" else None,
            target_type=target_type,
            target_id=target_id,
            document_id=document_id,
            ip=f"203.0.113.{person % 250 + 1}",
            user_agent=AGENTS[person % len(AGENTS)],
            outcome=outcomes[i],
            details=json.dumps(details, sort_keys=True, separators=(",", ":")),
            prev_hash=prev,
        )
        event.leaf_hash = audit.leaf_hash(cast(AuditEvent, event))
        prev = event.leaf_hash
        yield event


def fill(dsn: str, world: World, count: int, *, seed: int) -> int:
    """COPY `count` events after the current head; returns the new head's seq."""
    with psycopg.connect(dsn) as conn:
        seq, prev = conn.execute("SELECT seq, leaf_hash FROM audit_head WHERE id = 1").fetchone()  # type: ignore[misc]
        last = Event(0, "", None, None, "", None, None, None, None, None, None, "", "", prev)
        names = ", ".join(COLUMNS)
        with conn.cursor().copy(f"COPY audit_events ({names}) FROM STDIN") as copy:
            for last in generate(world, count, first_seq=seq + 1, prev=prev, seed=seed):
                copy.write_row(last.row())
        conn.execute(
            "UPDATE audit_head SET seq = %s, leaf_hash = %s WHERE id = 1",
            (last.seq, last.leaf_hash),
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_events")
    return int(last.seq)


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


def search_params(world: World, rng: random.Random) -> dict[str, Iterator[dict[str, str]]]:
    since = (world.end - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Targets drawn as the events were, so busy clients, people and documents come up
    # as often as an auditor would look at them.
    def pick(values: list[str]) -> str:
        return rng.choices(values, _skewed(len(values)))[0]

    def clients() -> Iterator[dict[str, str]]:
        while True:
            doc = rng.choices(range(DOCUMENTS), _skewed(DOCUMENTS))[0]
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
        "client + last 30 days": clients(),
        "one document": documents(),
        "one person": people(),
        "document.* + outcome": groups(),
    }


def run_searches(
    http: httpx.Client, world: World, runs: int, depth: int, seed: int
) -> list[Search]:
    rng = random.Random(seed)
    results = []
    for name, params in search_params(world, rng).items():
        search = Search(name, [], [], [])
        for _ in range(runs):
            query = next(params)
            cursor: str | None = None
            for page in range(depth + 1):
                began = time.perf_counter()
                answer = http.get(
                    "/api/v1/audit", params={**query, **({"cursor": cursor} if cursor else {})}
                )
                spent = time.perf_counter() - began
                answer.raise_for_status()
                cursor = answer.json()["next_cursor"]
                if page == 0:
                    search.first.append(spent)
                if page == depth or cursor is None:
                    search.deep.append(spent)
                    search.depths.append(page + 1)
                    break
        results.append(search)
        print(f"  {name}: first page {_summary(search.first)}; deep {_summary(search.deep)}")
    return results


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


@contextlib.contextmanager
def scratch_database(dsn: str, *, keep: bool) -> Iterator[str]:
    """A new database on the server of `dsn`, dropped at the end unless `keep`; yields its
    DSN."""
    name = f"cv_audit_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(dsn)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        if keep:
            print(f"kept database {name} (EXPLAIN ANALYZE there; drop it when done)")
        else:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(work: Path, dsn: str, port: int) -> Path:
    url = "postgresql+asyncpg" + dsn[dsn.index(":") :]
    config = work / "clientvault.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(work / 'data'))}\n"
        f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f"\n[database]\nurl = {json.dumps(url)}\n",
        encoding="utf-8",
    )
    return config


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="searches of each kind")
    parser.add_argument("--depth", type=int, default=100, help="pages to follow")
    parser.add_argument("--proofs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (libpq URL) on which a scratch database is created",
    )
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
    print("| search | first page p50 / p95 ms | deep page p50 / p95 ms (pages reached, median) |")
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
