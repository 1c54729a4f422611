"""The records worker: applies retention and re-checks quota alerts, in every app process.

Any number of processes may run it. Each pass is claimed first through the `retention`
row of `cursors` (a conditional UPDATE of the time of the last pass), so one process runs
it per interval; even two passes at once would be safe, since retention re-checks every
item under its row lock before deleting it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import quotas, retention
from vault.db import transaction
from vault.models import Client, Cursor
from vault.records import QuotaReservation
from vault.store import ObjectStore

log = logging.getLogger(__name__)

CURSOR = "retention"


async def claim_pass(
    sessions: async_sessionmaker[AsyncSession], *, interval_seconds: float, now: float
) -> bool:
    """Whether this process runs the pass due now (no other one ran within the interval)."""
    async with transaction(sessions) as session:
        result = await session.execute(
            update(Cursor)
            .where(col(Cursor.name) == CURSOR, col(Cursor.seq) <= int(now - interval_seconds))
            .values(seq=int(now))
        )
        assert isinstance(result, CursorResult)
        if result.rowcount == 1:
            return True
        if await session.get(Cursor, CURSOR) is not None:
            return False
    try:
        async with transaction(sessions) as session:
            session.add(Cursor(name=CURSOR, seq=int(now)))
    except DBIntegrityError:
        return False  # another process created it first, and runs this pass
    return True


async def run_once(
    sessions: async_sessionmaker[AsyncSession], store: ObjectStore, *, default_quota: int
) -> retention.RetentionRun:
    """Apply retention, drop lapsed quota reservations and re-check every usage alert."""
    done = await retention.apply(sessions, store, default_quota=default_quota)
    async with transaction(sessions) as session:
        await session.execute(
            delete(QuotaReservation).where(col(QuotaReservation.expires_at) <= datetime.now(UTC))
        )
        client_ids = (await session.execute(select(Client.id))).scalars().all()
    for client_id in client_ids:
        # A changed firm-wide default moves every client without a quota of its own.
        async with transaction(sessions) as session:
            await quotas.note_usage(session, client_id, default=default_quota)
    return done


async def run(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    *,
    interval_seconds: float,
    default_quota: int,
    poll_seconds: float = 60.0,
) -> None:
    """A pass every `interval_seconds` across all processes, until cancelled; errors are
    logged, not fatal."""
    while True:
        # Not at once: processes starting together do not all scan, and a short-lived
        # process (a test, a restart loop) never starts a pass it would abandon.
        await asyncio.sleep(min(poll_seconds, interval_seconds))
        try:
            if await claim_pass(sessions, interval_seconds=interval_seconds, now=time.time()):
                done = await run_once(sessions, store, default_quota=default_quota)
                if done.deleted:
                    log.info("retention deleted %d items", len(done.deleted))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention pass failed; retrying later")
