"""The thumbnail worker: draws the thumbnails of new images and PDFs ahead of any request,
so listings can show them knowing they exist (`vault.thumbnails.drawn_versions`).

It runs in every app process, like the scan worker; any number may run, on any node. Each
takes one queued version at a time (`vault.thumbnail_jobs`: a claim with a lease), so a
version is drawn by one of them at once; should two ever draw the same one, the first
stored row wins and the other's object is deleted (`vault.thumbnails.draw_and_store`).

A version is read into memory only up to `max_bytes` (larger ones get no thumbnail and are
not recorded: a raised limit lets the document page draw them on request), and drawings
share the per-process limiter with the requests that draw. Nothing plaintext is written to
disk. A version that cannot be drawn is recorded as a failure in `thumbnails` and never
tried again; one whose drawing fails for another reason (the store down) is tried again
later, a few times, then recorded as a failure too. A job claimed more often than that
(its worker died each time, say killed for memory) is given up without another try.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vault import audit, thumbnail_jobs, thumbnails
from vault.crypto.keyring import Keyring
from vault.db import reading
from vault.errors import IntegrityError, KeyNotFoundError, ThumbnailError
from vault.models import Document, Version
from vault.store import ObjectStore

logger = logging.getLogger(__name__)

# Tries before a version is recorded as one that cannot be drawn.
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


class Outcome(StrEnum):
    DRAWN = "drawn"
    FAILED = "failed"  # recorded as impossible to draw
    SKIPPED = "skipped"  # gone, too large, or already dealt with: nothing recorded
    RETRY = "retry"  # put back to be tried again later


def retry_wait(attempts: int) -> timedelta:
    """How long a job waits after its `attempts`-th try failed for a passing reason."""
    wait: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(wait, LAST_RETRY)


async def _source(
    sessions: async_sessionmaker[AsyncSession], keyring: Keyring, version_id: uuid.UUID
) -> thumbnails.Source | None:
    """The version to draw; None when there is nothing to do (gone, or already recorded)."""
    async with reading(sessions) as session:
        version = await session.get(Version, version_id)
        if version is None or await session.get(thumbnails.Thumbnail, version_id) is not None:
            return None
        document = await session.get(Document, version.document_id)
        assert document is not None
        return thumbnails.source_of(keyring, document, version)


async def draw_next(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    *,
    max_bytes: int,
    part_size: int,
    limiter: anyio.CapacityLimiter,
) -> Outcome | None:
    """Deal with the queued version due longest, if any is due; what became of it."""
    now = datetime.now(UTC)
    if not await thumbnail_jobs.anything_due(sessions, now):
        return None
    job = await thumbnail_jobs.claim(sessions, lease=LEASE, now=now)
    if job is None:
        return None  # another worker took it
    try:
        outcome = await _draw(sessions, store, keyring, job, max_bytes, part_size, limiter)
    except BaseException as exc:
        # Cancelled (shutting down) or an unforeseen error: the job waits for a later try.
        with anyio.CancelScope(shield=True):
            await thumbnail_jobs.retry_later(
                sessions, job, wait=retry_wait(job.attempts), error=repr(exc)
            )
        raise
    if outcome != Outcome.RETRY:
        await thumbnail_jobs.finish(sessions, job)
    return outcome


async def _draw(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    job: thumbnail_jobs.Claimed,
    max_bytes: int,
    part_size: int,
    limiter: anyio.CapacityLimiter,
) -> Outcome:
    try:
        source = await _source(sessions, keyring, job.version_id)
    except KeyNotFoundError as exc:
        await thumbnails.record_failure(sessions, job.version_id, f"no key to read it: {exc}")
        return Outcome.FAILED
    if source is None:
        return Outcome.SKIPPED
    if not thumbnails.may_have_thumbnail(source.content_type, source.size, max_bytes=max_bytes):
        return Outcome.SKIPPED
    if job.attempts > MAX_ATTEMPTS:
        # Claimed this often without an outcome: its drawing kills the worker.
        reason = f"gave up after {MAX_ATTEMPTS} attempts"
        await thumbnails.record_failure(sessions, job.version_id, reason)
        return Outcome.FAILED
    try:
        async with limiter:
            await thumbnails.draw_and_store(
                sessions,
                store,
                keyring,
                source,
                audit.SYSTEM,
                max_bytes=max_bytes,
                part_size=part_size,
            )
    except ThumbnailError:
        return Outcome.FAILED  # recorded by draw_and_store
    except IntegrityError as exc:
        # Recorded as the document's integrity failure; drawing it again would fail again.
        await thumbnails.record_failure(sessions, job.version_id, f"damaged: {exc}")
        return Outcome.FAILED
    except Exception as exc:  # the store's errors; vault cannot name storage's types
        if job.attempts >= MAX_ATTEMPTS:
            reason = f"gave up after {MAX_ATTEMPTS} attempts: {exc}"
            await thumbnails.record_failure(sessions, job.version_id, reason)
            return Outcome.FAILED
        logger.warning("thumbnail of version %s not drawn yet: %s", job.version_id, exc)
        await thumbnail_jobs.retry_later(
            sessions, job, wait=retry_wait(job.attempts), error=str(exc)
        )
        return Outcome.RETRY
    return Outcome.DRAWN


async def run(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    *,
    max_bytes: int,
    part_size: int,
    limiter: anyio.CapacityLimiter,
    interval: float = 2.0,
    once: bool = False,
) -> None:
    """Draw queued thumbnails until cancelled (with `once`, until none is due now); errors
    are logged, not fatal."""
    while True:
        try:
            while await draw_next(
                sessions,
                store,
                keyring,
                max_bytes=max_bytes,
                part_size=part_size,
                limiter=limiter,
            ):
                pass
        except Exception:
            logger.exception("thumbnail worker failed; retrying")
        if once:
            return
        await anyio.sleep(interval)
