"""`clientvault fsck` at a million versions on PostgreSQL: time and memory, against the same
check at a tenth of the size in the same run.

    python -m bench.fsck [--versions 1000000] [--clients 1000] [--deep-versions 20000]
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

In a scratch database on the server of `--dsn` (dropped at the end), `clientvault init` makes
the schema and the key file. Then documents with one version each go in, spread evenly over
`--clients` clients: each version a real CXP1 object (a 1 KiB plaintext sealed under a data
key of its own, wrapped by the keyring's KEK) written to the local object store, its rows
COPYed in. Three problems are planted among them: an object deleted (missing), an object no
version names (orphan), an object cut short (size).

`clientvault fsck --grace-minutes 0` runs as a process of its own, its RSS sampled every
50 ms: first at a tenth of `--versions`, then again once the rest are in. Flat memory across
the two sizes is what the streaming merge promises (vault/fsck.py). `--deep-versions` more
runs `fsck --deep` over a client of that many versions alone, for its rate.

The local store lists one directory at a time, so memory grows with the largest client's
object count; the S3 store lists 1,000 keys a page whatever the size.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

from bench.common import MiB
from bench.report import command_line, describe_machine
from bench.server import (
    add_dsn_argument,
    cli,
    free_port,
    scratch_database,
    server_environment,
    write_config,
)
from vault import crypto
from vault.crypto.keyring import Keyring
from web.services import open_services
from web.settings import load_settings

PLAINTEXT = os.urandom(1024)
DEEP_CLIENT = "deep-bench"


@dataclass(frozen=True, slots=True)
class Tenant:
    client_id: uuid.UUID
    folder_id: uuid.UUID


async def _keyring(config: Path) -> Keyring:
    async with open_services(load_settings(config)) as svc:
        return svc.keyring


def make_tenants(dsn: str, count: int, prefix: str) -> list[Tenant]:
    """`count` clients, each with one folder, straight into the tables."""
    now = datetime.now(UTC)
    tenants = [Tenant(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY clients (id, name, name_key, created_at, shared) FROM STDIN") as cp:
            for i, t in enumerate(tenants):
                cp.write_row((t.client_id, f"{prefix} {i}", f"{prefix} {i}", now, False))
        with cursor.copy(
            "COPY folders (id, client_id, parent_ref, name, name_key, created_at) FROM STDIN"
        ) as cp:
            for t in tenants:
                cp.write_row((t.folder_id, t.client_id, "", "Files", "files", now))
    return tenants


def fill(
    dsn: str, objects: Path, keyring: Keyring, tenants: list[Tenant], start: int, count: int
) -> list[str]:
    """Versions `start` to `start + count` (round-robin over `tenants`): sealed objects on
    disk and their rows; returns their storage keys in order."""
    now = datetime.now(UTC)
    keys: list[str] = []
    documents: list[tuple[object, ...]] = []
    versions: list[tuple[object, ...]] = []

    def flush(conn: psycopg.Connection) -> None:
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY documents (id, client_id, folder_id, name, name_key, current_version, "
                "created_at, updated_at) FROM STDIN"
            ) as cp:
                for row in documents:
                    cp.write_row(row)
            with cursor.copy(
                "COPY versions (id, document_id, number, size, sha256, content_type, "
                "created_at, storage_key, object_size, kek_id, wrapped_dek, header) FROM STDIN"
            ) as cp:
                for row in versions:
                    cp.write_row(row)
        conn.commit()
        documents.clear()
        versions.clear()

    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    made: set[Path] = set()
    with psycopg.connect(dsn) as conn:
        for i in range(start, start + count):
            tenant = tenants[i % len(tenants)]
            document_id, version_id = uuid.uuid4(), uuid.uuid4()
            dek = crypto.new_data_key()
            context = crypto.ObjectContext(tenant.client_id, document_id, version_id)
            sealed = crypto.encrypt_object(crypto.SegmentSealer(dek, context), PLAINTEXT)
            kek_id, wrapped = keyring.wrap(dek)
            key = f"objects/{tenant.client_id}/{version_id}"
            path = objects / key
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            # No fsync: a benchmark's fill, not the store's own write path.
            path.write_bytes(sealed)
            keys.append(key)
            name = f"doc-{i:07d}.bin"
            documents.append(
                (document_id, tenant.client_id, tenant.folder_id, name, name, 1, now, now)
            )
            versions.append(
                (
                    version_id, document_id, 1, len(PLAINTEXT), digest,
                    "application/octet-stream", now, key, len(sealed), kek_id, wrapped,
                    sealed[: crypto.HEADER_SIZE],
                )
            )  # fmt: skip
            if len(versions) == 10_000:
                flush(conn)
        if versions:
            flush(conn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE documents")
        conn.execute("VACUUM ANALYZE versions")
    return keys


def plant_problems(objects: Path, keys: list[str], tenant: Tenant) -> None:
    """One missing, one orphan, one cut short: what fsck must name."""
    (objects / keys[len(keys) // 3]).unlink()
    (objects / f"objects/{tenant.client_id}/{uuid.uuid4()}").write_bytes(b"left behind")
    cut = objects / keys[2 * len(keys) // 3]
    cut.write_bytes(cut.read_bytes()[:-1])


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss: int
    exit_code: int
    summary: str
    problems: list[str]


def run_fsck(config: Path, *args: str) -> Run:
    """`clientvault fsck ARGS` as a process of its own, its RSS sampled every 50 ms."""
    program = Path(sys.executable).parent / "clientvault"
    began = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [str(program), "--config", str(config), "fsck", "--grace-minutes", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_environment(config),
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.05)
    out, err = process.communicate()
    seconds = time.perf_counter() - began
    lines = [line for line in (out + err).splitlines() if line.strip()]
    return Run(seconds, peak, process.returncode, lines[-1] if lines else "", lines[:-1])


def report(label: str, versions: int, run: Run) -> str:
    rate = versions / run.seconds
    return (
        f"| {label} | {versions:,} | {run.seconds:.1f} s | {rate:,.0f} | "
        f"{run.peak_rss / MiB:.0f} MiB | {run.exit_code} |"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--deep-versions", type=int, default=20_000)
    add_dsn_argument(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    print(f"command: {command_line('bench.fsck', argv)}")
    print(f"machine: {describe_machine()}")
    tenth = args.versions // 10
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="cv-bench-fsck-") as tmp,
        scratch_database(args.dsn, keep=False) as dsn,
    ):
        work = Path(tmp)
        config = write_config(work, dsn, free_port())
        cli(config, "init")
        objects = work / "data" / "objects"
        keyring = asyncio.run(_keyring(config))
        tenants = make_tenants(dsn, args.clients, "Client")
        began = time.perf_counter()
        keys = fill(dsn, objects, keyring, tenants, 0, tenth)
        print(f"filled {tenth:,} versions in {time.perf_counter() - began:.0f} s")
        plant_problems(objects, keys, tenants[0])
        small = run_fsck(config)
        rows.append(report("fsck", tenth, small))
        began = time.perf_counter()
        fill(dsn, objects, keyring, tenants, tenth, args.versions - tenth)
        print(f"filled to {args.versions:,} versions in {time.perf_counter() - began:.0f} s")
        large = run_fsck(config)
        rows.append(report("fsck", args.versions, large))
        for run in (small, large):
            print(f"  {run.summary}")
            for line in run.problems:
                print(f"    {line}")
        if args.deep_versions:
            deep_tenant = make_tenants(dsn, 1, DEEP_CLIENT)
            fill(dsn, objects, keyring, deep_tenant, 0, args.deep_versions)
            deep = run_fsck(config, "--deep", "--client", f"{DEEP_CLIENT} 0")
            rows.append(report("fsck --deep, one client", args.deep_versions, deep))
            print(f"  {deep.summary}")
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    print()
    print("| run | versions | time | versions/s | peak RSS | exit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    named = all(
        any(line.startswith(kind) for line in run.problems)
        for run in (small, large)
        for kind in ("missing", "orphan", "size")
    )
    print(f"\nthe three planted problems named at both sizes: {'yes' if named else 'NO'}")
    growth = large.peak_rss / small.peak_rss
    print(f"peak RSS at {args.versions:,} / at {tenth:,}: {growth:.2f}x")
    return 0 if named else 1


if __name__ == "__main__":
    sys.exit(main())
