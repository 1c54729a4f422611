"""Concurrent writers on one SQLite database in one process: the engine's own queue for the
write lock (`vault.db.create_engine`) against SQLite's busy handler alone, in the same run.

Every transaction of the app begins with `BEGIN IMMEDIATE`, so writers meet at SQLite's
write lock. Each of `--writers` tasks runs `--transactions` transactions like an audited
request's: a read, an update and an insert, with the event loop also busy with other work
(`--loop-ms` of CPU between each task's transactions, as a request's body or a page's
rendering keeps it busy). Rounds alternate between the two engines.

    python -m bench.db_writers [--writers 20] [--transactions 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vault.db import _configure_sqlite, create_engine, session_factory, transaction


def busy_handler_engine(url: str) -> AsyncEngine:
    """The app's engine as it was before its writers queued: SQLite's busy handler alone."""
    engine = create_async_engine(url, connect_args={"timeout": 30})
    _configure_sqlite(engine)
    return engine


async def prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS heads (id INTEGER PRIMARY KEY, n)"))
        await conn.execute(text("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, n)"))
        await conn.execute(text("INSERT OR IGNORE INTO heads (id, n) VALUES (1, 0)"))


def spin(milliseconds: float) -> None:
    end = time.perf_counter() + milliseconds / 1000
    while time.perf_counter() < end:
        pass


async def writer(engine: AsyncEngine, transactions: int, loop_ms: float) -> list[float]:
    sessions = session_factory(engine)
    took: list[float] = []
    for _ in range(transactions):
        spin(loop_ms)
        started = time.perf_counter()
        async with transaction(sessions) as session:
            head = (await session.execute(text("SELECT n FROM heads WHERE id = 1"))).scalar_one()
            await session.execute(text("UPDATE heads SET n = :n WHERE id = 1"), {"n": head + 1})
            await session.execute(text("INSERT INTO events (n) VALUES (:n)"), {"n": head + 1})
        took.append(time.perf_counter() - started)
        await asyncio.sleep(0)
    return took


async def round_of(engine: AsyncEngine, args: argparse.Namespace) -> tuple[float, list[float]]:
    started = time.perf_counter()
    per_writer = await asyncio.gather(
        *(writer(engine, args.transactions, args.loop_ms) for _ in range(args.writers))
    )
    elapsed = time.perf_counter() - started
    return elapsed, [t for took in per_writer for t in took]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-db-writers-") as tmp:
        engines = {
            "SQLite's busy handler": busy_handler_engine(f"sqlite+aiosqlite:///{tmp}/a.db"),
            "queued in the engine": create_engine(f"sqlite+aiosqlite:///{tmp}/b.db"),
        }
        results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in engines}
        try:
            for engine in engines.values():
                await prepare(engine)
                await round_of(engine, argparse.Namespace(**{**vars(args), "writers": 2}))
            for _ in range(args.rounds):
                for name, engine in engines.items():
                    results[name].append(await round_of(engine, args))
        finally:
            for engine in engines.values():
                await engine.dispose()
    total = args.writers * args.transactions
    print(
        f"{args.writers} writers x {args.transactions} transactions, {args.loop_ms} ms of "
        f"loop work between each writer's transactions, {args.rounds} rounds each, alternating"
    )
    print()
    print("| engine | transactions/s, each round | transaction p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rounds in results.items():
        rates = ", ".join(f"{total / elapsed:,.0f}" for elapsed, _ in rounds)
        took = sorted(t * 1000 for _, times in rounds for t in times)
        p99 = took[int(len(took) * 0.99)]
        print(f"| {name} | {rates} | {statistics.median(took):.1f} | {p99:.1f} | {took[-1]:.1f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--transactions", type=int, default=40)
    parser.add_argument("--loop-ms", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
