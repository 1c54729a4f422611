"""Refused requests in the audit log: every one recorded, none able to flood it.

A refusal (a 401, a 403, a 404 on a resource the caller may not see) ends the request's
transaction with a rollback, which takes any event written inside it along. So the web
layer records the refusal afterwards, in a transaction of its own, through `record`.

OWASP ASVS 5.0 16.3.2 asks for failed authorisation attempts to be logged; a log that
anyone can fill by repeating a refused request is itself an attack (it buries the events
that matter and grows without bound). So each (subject, reason) pair, where the subject
is the signed-in actor or else the peer's address, writes at most `Limits.per_window`
`access.denied` events per `Limits.window`. Further refusals are counted in the
`refusal_windows` table, which every app process shares, and summarised by one
`access.denied_suppressed` event with their count once the window is over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Integer, String, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from vault import audit
from vault.audit import AuditContext, timestamp
from vault.audit.actions import AuditAction
from vault.db import insert_missing

DENIED = AuditAction.ACCESS_DENIED
SUPPRESSED = AuditAction.ACCESS_DENIED_SUPPRESSED
MAX_TARGET = 200  # an id "as given" can be any text; the log keeps a bounded prefix


class RefusalWindow(SQLModel, table=True):
    """Refusals counted in the current window of one (subject, reason) pair."""

    __tablename__ = "refusal_windows"
    key: str = Field(sa_column=Column(String(128), primary_key=True))
    reason: str = Field(sa_column=Column(String(32), nullable=False))
    actor_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    actor_role: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    ip: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    window_started_at: datetime = Field(index=True)
    count: int = Field(default=0, sa_column=Column(Integer, nullable=False))


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused request, described without anything the caller sent as a secret.

    Attributes:
        method: The HTTP method.
        route: The route template (`/api/v1/documents/{document_id}`), not the raw path,
            which may hold a secret (a share-link or reset token).
        reason: Why, in a short code: `unauthenticated`, `invalid_token`, `csrf`,
            `cross_site`, `forbidden`, `not_found`.
        status: The HTTP status answered.
        target_type: What the target id names (`document`, `folder`, …), if any.
        target_id: The id as the caller gave it, valid or not.
    """

    method: str
    route: str
    reason: str
    status: int
    target_type: str | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    per_window: int = 10
    window: timedelta = timedelta(minutes=1)
    # Expired windows of other subjects summarised per call, so a call stays short.
    sweep: int = 20


def _key(context: AuditContext, reason: str) -> str:
    subject = f"user:{context.actor_id}" if context.actor_id else f"ip:{context.ip or ''}"
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{reason[:32]}:{digest}"


async def _summarise(
    session: AsyncSession, window: RefusalWindow, limits: Limits, *, now: datetime
) -> None:
    suppressed = window.count - limits.per_window
    if suppressed <= 0:
        return
    context = AuditContext(window.actor_id, window.actor_role, window.ip)
    await audit.record(
        session,
        context,
        SUPPRESSED,
        outcome="denied",
        details={
            "reason": window.reason,
            "suppressed": suppressed,
            "since": timestamp(window.window_started_at),
            "until": timestamp(min(now, window.window_started_at + limits.window)),
        },
    )


async def record(
    session: AsyncSession,
    context: AuditContext,
    refusal: Refusal,
    *,
    now: datetime,
    limits: Limits | None = None,
) -> bool:
    """Count one refusal and audit it unless its subject is over the limit.

    Run it in a fresh transaction after the refused request's own one rolled back. Safe
    across processes: the window row is created without conflict, then locked (FOR
    UPDATE on PostgreSQL; SQLite transactions here already hold the write lock).

    Returns:
        Whether an `access.denied` event was written (False: counted, to be summarised).
    """
    limits = limits or Limits()
    key = _key(context, refusal.reason)
    fresh = {
        "key": key,
        "reason": refusal.reason[:32],
        "actor_id": context.actor_id,
        "actor_role": context.actor_role,
        "ip": context.ip,
        "window_started_at": now,
        "count": 0,
    }
    await session.execute(insert_missing(session, RefusalWindow, fresh))
    window = (
        await session.execute(
            select(RefusalWindow)
            .where(RefusalWindow.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if now >= window.window_started_at + limits.window:
        await _summarise(session, window, limits, now=now)
        window.window_started_at = now
        window.count = 0
    window.count += 1
    session.add(window)
    written = window.count <= limits.per_window
    if written:
        target = None if refusal.target_id is None else refusal.target_id[:MAX_TARGET]
        await audit.record(
            session,
            context,
            DENIED,
            outcome="denied",
            target_type=refusal.target_type,
            target_id=target,
            details={
                "method": refusal.method,
                "route": refusal.route,
                "reason": refusal.reason,
                "status": refusal.status,
            },
        )
    await _sweep(session, limits, now=now, keep=key)
    return written


async def _sweep(session: AsyncSession, limits: Limits, *, now: datetime, keep: str) -> None:
    """Summarise and drop other subjects' finished windows: a flood that stopped gets its
    summary with the next refusal of anyone, not only with its own next one."""
    expired = (
        (
            await session.execute(
                select(RefusalWindow)
                .where(col(RefusalWindow.window_started_at) <= now - limits.window)
                .where(col(RefusalWindow.key) != keep)
                .order_by(col(RefusalWindow.window_started_at))
                .limit(limits.sweep)
                # Rows another process holds are its own to summarise: skip, never wait.
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for window in expired:
        await _summarise(session, window, limits, now=now)
    if expired:
        await session.execute(
            delete(RefusalWindow).where(col(RefusalWindow.key).in_([w.key for w in expired]))
        )
