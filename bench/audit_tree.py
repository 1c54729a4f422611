"""The audit log's Merkle tree at scale: building the stored subtree hashes, roots,
inclusion and consistency proofs, and a signed checkpoint, over N leaves.

    python -m bench.audit_tree --events 1000000 [--database-url postgresql+asyncpg://…]

The events are written straight into a fresh database with random leaf hashes: the tree
reads only `seq` and `leaf_hash`, so the chain does not need to be real for these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import LocalObjectStore
from vault.audit import checkpoints, merkle
from vault.audit import tree as audit_tree
from vault.audit.checkpoints import Signer
from vault.crypto.keyring import new_signing_key
from vault.db import create_engine, migrate, session_factory, transaction
from vault.models import AuditEvent, AuditHead

BATCH = 20_000


def _rss() -> float:
    return float(psutil.Process().memory_info().rss) / (1 << 20)


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _fill(sessions: async_sessionmaker[AsyncSession], start: int, count: int) -> None:
    for first in range(start, start + count, BATCH):
        rows = [
            {
                "seq": seq,
                "ts": "2026-12-04T00:00:00.000Z",
                "action": "bench.event",
                "outcome": "success",
                "details": "{}",
                "prev_hash": "0" * 64,
                "leaf_hash": random.randbytes(32).hex(),
            }
            for seq in range(first, min(first + BATCH, start + count))
        ]
        async with transaction(sessions) as session:
            await session.execute(insert(AuditEvent), rows)
            await session.execute(
                update(AuditHead).where(AuditHead.id == 1).values(seq=rows[-1]["seq"])  # type: ignore[arg-type]
            )


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


async def run(events: int, database_url: str, objects: Path, proofs: int) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    began = time.perf_counter()
    await _fill(sessions, 1, events)
    print(f"inserted {events:,} events in {time.perf_counter() - began:.1f} s")

    began = time.perf_counter()
    async with transaction(sessions) as session:
        stored = await audit_tree.extend(session)
    print(
        f"first build of stored subtree hashes ({stored:,} leaves): "
        f"{time.perf_counter() - began:.1f} s, RSS {_rss():.0f} MiB"
    )

    await _fill(sessions, events + 1, 1000)
    size = events + 1000
    began = time.perf_counter()
    async with transaction(sessions) as session:
        await audit_tree.extend(session)
    print(
        f"incremental build after 1,000 more events: {(time.perf_counter() - began) * 1000:.0f} ms"
    )

    async with transaction(sessions) as session:
        reader = await audit_tree.TreeReader.open(session)
        began = time.perf_counter()
        root = await reader.root(size)
        print(f"root at {size:,} leaves: {(time.perf_counter() - began) * 1000:.1f} ms")
    inclusion: list[float] = []
    consistency: list[float] = []
    rng = random.Random(7)
    for _ in range(proofs):
        index = rng.randrange(size)
        async with transaction(sessions) as session:
            began = time.perf_counter()
            reader = await audit_tree.TreeReader.open(session)  # cold caches, as a request
            path = await reader.inclusion(index, size)
            leaf = await reader.leaf(index)
            inclusion.append(time.perf_counter() - began)
        merkle.verify_inclusion(leaf, index, size, path, root)
        first = rng.randrange(1, size)
        async with transaction(sessions) as session:
            began = time.perf_counter()
            reader = await audit_tree.TreeReader.open(session)
            path = await reader.consistency(first, size)
            consistency.append(time.perf_counter() - began)
    print(f"inclusion proof at {size:,} ({proofs} random leaves): {_ms(inclusion)}")
    print(f"consistency proof to {size:,} ({proofs} random sizes): {_ms(consistency)}")

    store = LocalObjectStore(objects)
    signer = Signer("bench.audit/0", new_signing_key().private_key())
    await _fill(sessions, size + 1, 10)
    began = time.perf_counter()
    note = await checkpoints.write(sessions, store, signer)
    assert note is not None
    print(
        f"signed checkpoint (extend + root + store): {(time.perf_counter() - began) * 1000:.1f} ms"
    )
    print(f"RSS now {_rss():.0f} MiB, peak {_peak():.0f} MiB (the insert phase included)")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=200)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cv-bench-tree-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{os.path.join(tmp, 'bench.db')}"
        objects = Path(tmp) / "objects"
        objects.mkdir()
        asyncio.run(run(args.events, url, objects, args.proofs))


if __name__ == "__main__":
    main()
