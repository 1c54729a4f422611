"""Load on the production shape: Locust against nginx and several nodes (tests/fixtures/cluster.py).

    python -m bench.load [--minutes 10] [--nodes 3] [--browsers 200] [--uploaders 20]
        [--kill-node] [--think-seconds 10 30] [--tenants 10] [--documents 8] [--document-kib 512]
        [--upload-kib 2048] [--chunk-kib 512] [--out DIR]

Starts a throwaway PostgreSQL, an S3 server (the one named by CLIENTVAULT_TEST_S3_ENDPOINT,
as `scripts/rgw start` exports it, else a moto server in a process of its own), and the
cluster: nginx with TLS from a test CA in front of `--nodes` `clientvault serve` processes.
Provisions `--tenants` clients, each with a client user, a folder of `--documents` documents
and a folder to upload into, then runs `bench/locustfile.py` headless for `--minutes`:
`--browsers` users listing clients and folders, reading documents and downloading them (whole
and ranges), and `--uploaders` users uploading `--upload-kib` files by tus. Each user waits
between `--think-seconds` MIN and MAX (uniform) after each action, as a person reading.

Measured: per route, requests, failures, throughput and p50/p95/p99 (Locust's figures);
per node, RSS (mean and peak) and CPU (mean cores), sampled every 2 s; the database's
connections (pg_stat_activity, mean and peak). With `--kill-node` the last node is killed
(SIGKILL) half-way through, and failures are split into requests in flight at that moment
and requests started after it.

Benchmarks are not tests; the machine's load is part of what is measured (say so with the
figures). Needs the `bench` extra (`pip install -e '.[test,bench]'`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from tests.fixtures.cluster import USER_PASSWORD, Cluster
from tests.fixtures.live import Pattern
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, S3Endpoint, free_port

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SAMPLE_SECONDS = 2.0


@contextlib.contextmanager
def s3_server() -> Iterator[S3Endpoint]:
    """The RGW (or any S3) named by the environment, else moto in a process of its own (in
    this one it would compete with the sampler for the interpreter)."""
    url = os.environ.get("CLIENTVAULT_TEST_S3_ENDPOINT", "")
    if url:
        yield S3Endpoint(
            url=url,
            access_key_id=os.environ.get("CLIENTVAULT_TEST_S3_ACCESS_KEY", ""),
            secret_access_key=os.environ.get("CLIENTVAULT_TEST_S3_SECRET_KEY", ""),
            is_moto=False,
        )
        return
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("moto did not start")
            time.sleep(0.1)
        yield S3Endpoint(
            url=f"http://127.0.0.1:{port}",
            access_key_id=MOTO_ACCESS_KEY,
            secret_access_key=MOTO_SECRET_KEY,
        )
    finally:
        process.terminate()
        process.wait()


def provision(cluster: Cluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Tenants (client, client user with a token, a folder of documents, an upload folder)."""
    cluster.cli("user", "add", "admin@load.test", "--role", "admin")
    admin = {"Authorization": f"Bearer {cluster.cli('token', 'create', 'admin@load.test')}"}

    def tenant(n: int) -> dict[str, Any]:
        name = f"Tenant {n:03d}"
        email = f"user{n:03d}@load.test"
        client_id = cluster.cli("client", "add", name)
        cluster.cli(
            "user", "add", email, "--role", "client", "--client", name, "--password-stdin",
            stdin=USER_PASSWORD.encode() + b"\n",
        )  # fmt: skip
        token = cluster.cli("token", "create", email)
        with httpx.Client(base_url=cluster.url, verify=cluster.ssl_context(), timeout=60) as http:
            folders = [
                http.post(
                    "/api/v1/folders", json={"client_id": client_id, "name": f}, headers=admin
                ).json()["id"]
                for f in ("Documents", "Uploads")
            ]
            documents = []
            for d in range(args.documents):
                data = Pattern(f"{n}-{d}").read(0, args.document_kib * 1024)
                response = http.put(
                    f"/api/v1/folders/{folders[0]}/files/doc-{d}.bin", content=data, headers=admin
                )
                response.raise_for_status()
                documents.append(response.json()["document_id"])
        return {
            "token": token,
            "folder_id": folders[0],
            "upload_folder_id": folders[1],
            "documents": documents,
        }

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(tenant, range(args.tenants)))


@dataclass
class Sampler:
    """RSS and CPU of each node, and the database's connections, every SAMPLE_SECONDS."""

    cluster: Cluster
    dsn: str
    database: str
    rss: dict[int, list[int]] = field(default_factory=dict)
    cpu: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    connections: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        processes = {n.index: psutil.Process(n.pid) for n in self.cluster.nodes}
        with psycopg.connect(self.dsn, autocommit=True) as db:
            while not self._stop.wait(SAMPLE_SECONDS):
                now = time.monotonic()
                for index, process in processes.items():
                    with contextlib.suppress(psutil.Error):
                        self.rss.setdefault(index, []).append(process.memory_info().rss)
                        times = process.cpu_times()
                        self.cpu.setdefault(index, []).append((now, times.user + times.system))
                row = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchone()
                self.connections.append(int(row[0]) if row else 0)

    def stop(self) -> None:
        self._stop.set()


def node_table(sampler: Sampler, killed: int | None) -> list[str]:
    lines = ["| node | RSS mean (MiB) | RSS peak (MiB) | CPU (mean cores) |", "|---|---|---|---|"]
    for index in sorted(sampler.rss):
        rss = sampler.rss[index]
        cpu = sampler.cpu[index]
        cores = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else 0.0
        note = " (killed half-way)" if index == killed else ""
        lines.append(
            f"| {index}{note} | {statistics.mean(rss) / 2**20:.0f} | {max(rss) / 2**20:.0f} "
            f"| {cores:.2f} |"
        )
    conns = sampler.connections or [0]
    lines.append("")
    lines.append(
        f"Database connections: mean {statistics.mean(conns):.1f}, peak {max(conns)} "
        f"({len(sampler.cluster.nodes)} nodes, pool_size per node as configured)."
    )
    return lines


def route_table(stats_csv: Path, seconds: float) -> list[str]:
    lines = [
        "| route | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    with stats_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            name = f"{row['Type']} {row['Name']}".strip()
            if row["Name"] == "Aggregated":
                name = "**all**"
            lines.append(
                f"| {name} | {row['Request Count']} | {row['Failure Count']} "
                f"| {int(row['Request Count']) / seconds:.1f} | {row['50%']} | {row['95%']} "
                f"| {row['99%']} |"
            )
    return lines


def failure_split(failures: Path, kill_time: float | None) -> list[str]:
    records = (
        [json.loads(line) for line in failures.read_text().splitlines()]
        if (failures.exists())
        else []
    )
    if kill_time is None:
        return [f"Failed requests: {len(records)}."]
    before = [r for r in records if r["ended"] < kill_time]
    in_flight = [r for r in records if r["started"] <= kill_time <= r["ended"]]
    after = [r for r in records if r["started"] > kill_time]
    lines = [
        f"Failed requests: {len(records)}; before the kill: {len(before)}; in flight when the "
        f"node died: {len(in_flight)}; started after the kill: {len(after)}."
    ]
    lines += [f"- after the kill: {r['name']}: {r['error']}" for r in after[:10]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--kill-node", action="store_true")
    parser.add_argument(
        "--think-seconds", type=float, nargs=2, default=(10.0, 30.0), metavar=("MIN", "MAX")
    )
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--document-kib", type=int, default=512)
    parser.add_argument("--upload-kib", type=int, default=2048)
    parser.add_argument("--chunk-kib", type=int, default=512)
    parser.add_argument("--spawn-rate", type=float, default=20)
    parser.add_argument("--out", type=Path, default=None, help="Where results go (a temp dir).")
    args = parser.parse_args()
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the cluster and PostgreSQL are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    root = Path(tempfile.mkdtemp(prefix="cv-load-"))
    os.chmod(root, 0o700)
    out = args.out or root / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "failures.jsonl").unlink(missing_ok=True)
    # Beside, not under, the 0700 root: when run as root PostgreSQL runs as its own user.
    pg_root = Path(tempfile.mkdtemp(prefix="cv-load-pg-"))
    os.chmod(pg_root, 0o755)  # noqa: S103 - the postgres user, when run as root, must reach its data
    postgres = PostgresServer(pg_root)
    postgres.start()
    try:
        postgres.execute("CREATE DATABASE load")
        cluster_root = root / "cluster"
        cluster_root.mkdir(mode=0o700)
        with (
            s3_server() as s3,
            Cluster(
                cluster_root,
                database_url=postgres.url("load"),
                s3=s3,
                nodes=args.nodes,
                gate=False,
                nginx_workers=2,
                config={
                    "storage": {"read_ahead_mib": 8, "max_attempts": 5, "read_timeout_seconds": 60},
                    "logging": {"level": "WARNING"},
                },
            ) as cluster,
        ):
            print(f"cluster up at {cluster.url}; provisioning", file=sys.stderr)
            plan = {
                "url": cluster.url,
                "ca": str(cluster.ca_path),
                "tenants": provision(cluster, args),
                "browsers": args.browsers,
                "uploaders": args.uploaders,
                "think_seconds": list(args.think_seconds),
                "upload_bytes": args.upload_kib * 1024,
                "chunk_bytes": args.chunk_kib * 1024,
                "failures": str(out / "failures.jsonl"),
            }
            plan_path = root / "plan.json"
            plan_path.write_text(json.dumps(plan))
            report = run(cluster, args, plan_path, out, postgres)
    finally:
        postgres.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
    text = "\n".join(report)
    (out / "report.md").write_text(text + "\n")
    print(text)
    print(f"\nresults in {out}", file=sys.stderr)


def run(
    cluster: Cluster,
    args: argparse.Namespace,
    plan_path: Path,
    out: Path,
    postgres: PostgresServer,
) -> list[str]:
    users = args.browsers + args.uploaders
    seconds = args.minutes * 60
    sampler = Sampler(cluster, postgres.dsn(), "load")
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    env = {**os.environ, "CLIENTVAULT_LOAD_PLAN": str(plan_path)}
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{int(seconds)}s", "--stop-timeout", "30",
        "--csv", str(out / "locust"), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    started = time.time()
    locust = subprocess.Popen(  # noqa: S603 - fixed arguments
        command, env=env, stdout=subprocess.DEVNULL
    )
    try:
        kill_time = None
        killed = None
        if args.kill_node:
            with contextlib.suppress(subprocess.TimeoutExpired):
                locust.wait(seconds / 2)
            victim = cluster.nodes[-1]
            kill_time = time.time()
            victim.kill()
            killed = victim.index
            print(f"killed node {victim.index} at {kill_time - started:.0f} s", file=sys.stderr)
        locust.wait()
    finally:
        if locust.poll() is None:
            locust.terminate()
            locust.wait()
    sampler.stop()
    thread.join()
    elapsed = time.time() - started
    return [
        f"{users} users ({args.browsers} browsing, {args.uploaders} uploading "
        f"{args.upload_kib} KiB by tus in {args.chunk_kib} KiB PATCHes) for "
        f"{args.minutes:g} min on {args.nodes} nodes behind nginx, "
        f"{args.think_seconds[0]:g}-{args.think_seconds[1]:g} s think time"
        + (", one node killed half-way" if args.kill_node else "")
        + f"; locust exited with {locust.returncode}.",
        "",
        *route_table(out / "locust_stats.csv", elapsed),
        "",
        *failure_split(out / "failures.jsonl", kill_time),
        "",
        *node_table(sampler, killed),
    ]


if __name__ == "__main__":
    main()
