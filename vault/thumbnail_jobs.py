"""The queue of versions whose thumbnails are still to be drawn (`vault.thumbnail_worker`).

A row is added in the transaction that records an image's or a PDF's version
(`vault.documents.record_version`, the one path every upload, publish and release from
quarantine takes), so a version is queued exactly when it exists. Workers on any node take
rows by a claim and a deadline in them (`due_at`): a row is drawn by one worker at a time,
and one whose worker died is taken over once its deadline passed. The row goes when the
version has its thumbnail, or its failure, recorded in `thumbnails`.

Kept apart from `vault.thumbnails`, which reads versions through `vault.documents`: this
module imports neither, so recording a version can queue it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, String, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select

from vault.db import reading, transaction
from vault.models import Version, utcnow
from vault.thumbnail_render import thumbnailable

ERROR_LENGTH = 255


class ThumbnailJob(SQLModel, table=True):
    """A version waiting for its thumbnail."""

    __tablename__ = "thumbnail_jobs"
    version_id: uuid.UUID = Field(foreign_key="versions.id", primary_key=True)
    # When a worker may take it: queued, the end of a worker's lease, or a retry's time.
    due_at: datetime = Field(default_factory=utcnow, index=True)
    claim: str | None = Field(default=None, max_length=36)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(String(ERROR_LENGTH)))
    created_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job this worker holds until `until`; `attempts` counts this one."""

    version_id: uuid.UUID
    token: str
    attempts: int
    until: datetime


def enqueue(session: AsyncSession, version: Version) -> None:
    """Queue a new version for drawing, in the caller's transaction, if its type has
    thumbnails (its size is judged by the worker, against the configured limit)."""
    if thumbnailable(version.content_type) and version.size > 0:
        session.add(ThumbnailJob(version_id=version.id, due_at=version.created_at))


async def anything_due(sessions: async_sessionmaker[AsyncSession], now: datetime) -> bool:
    # A plain read: an idle poll takes no write lock (SQLite has one for the whole file).
    async with reading(sessions) as session:
        found = await session.execute(
            select(ThumbnailJob.version_id).where(col(ThumbnailJob.due_at) <= now).limit(1)
        )
        return found.first() is not None


async def claim(
    sessions: async_sessionmaker[AsyncSession], *, lease: timedelta, now: datetime | None = None
) -> Claimed | None:
    """Take the job due longest, if any, for `lease`."""
    moment = now or datetime.now(UTC)
    token = str(uuid.uuid4())
    async with transaction(sessions) as session:
        job = (
            await session.execute(
                select(ThumbnailJob)
                .where(col(ThumbnailJob.due_at) <= moment)
                .order_by(col(ThumbnailJob.due_at))
                .limit(1)
                # PostgreSQL: workers on other nodes skip the row this one holds.
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if job is None:
            return None
        job.claim = token
        job.due_at = moment + lease
        job.attempts += 1
        session.add(job)
        return Claimed(job.version_id, token, job.attempts, job.due_at)


async def finish(sessions: async_sessionmaker[AsyncSession], job: Claimed) -> None:
    """The version is dealt with (drawn, failed, or nothing to draw): its row goes."""
    async with transaction(sessions) as session:
        await session.execute(
            delete(ThumbnailJob).where(
                col(ThumbnailJob.version_id) == job.version_id, col(ThumbnailJob.claim) == job.token
            )
        )


async def retry_later(
    sessions: async_sessionmaker[AsyncSession], job: Claimed, *, wait: timedelta, error: str
) -> None:
    """Put the job back to be tried again after `wait` (the store was down, say)."""
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                select(ThumbnailJob)
                .where(col(ThumbnailJob.version_id) == job.version_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if row is None or row.claim != job.token:
            return  # taken over meanwhile
        row.claim = None
        row.due_at = datetime.now(UTC) + wait
        row.last_error = error[:ERROR_LENGTH]
        session.add(row)


async def forget(session: AsyncSession, version_ids: Sequence[uuid.UUID]) -> None:
    """Drop the jobs of versions about to be deleted, in the caller's transaction."""
    if version_ids:
        await session.execute(
            delete(ThumbnailJob).where(col(ThumbnailJob.version_id).in_(version_ids))
        )
