"""Visits to the home page, and what changed in the documents since the one before.

A visit starts when the home page is loaded more than `VISIT_GAP` after it was last loaded;
reloading it within a visit keeps showing the same changes, so they do not vanish while the
user works through them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.audit import timestamp
from vault.lookalikes import shown_name
from vault.models import AuditEvent, Client, Document, Folder, User
from vault.policy import Principal, visible_client_ids

VISIT_GAP = timedelta(minutes=30)
FIRST_VISIT_WINDOW = timedelta(days=14)
# The document events that change what a user finds in a folder (not views or downloads).
CHANGES = ("document.created", "document.version_added", "document.deleted", "document.restored")


@dataclass(frozen=True, slots=True)
class Visit:
    """Changes after `since` are new to the user; `first` when no earlier visit is known."""

    since: datetime
    first: bool


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite hands back naive UTC times
        return moment.replace(tzinfo=UTC)
    return moment


async def record_visit(session: AsyncSession, user: User, *, now: datetime | None = None) -> Visit:
    """Note that `user` loaded the home page at `now`; returns what their news starts from."""
    now = now or datetime.now(UTC)
    last = _aware(user.last_seen_at)
    if last is not None and now - last > VISIT_GAP:
        user.previous_seen_at = last
    user.last_seen_at = now
    session.add(user)
    await session.flush()
    previous = _aware(user.previous_seen_at)
    if previous is None:
        return Visit(now - FIRST_VISIT_WINDOW, first=True)
    return Visit(previous, first=False)


@dataclass(frozen=True, slots=True)
class Change:
    """One document change as the home page lists it."""

    action: str
    at: datetime
    name: str
    document_id: uuid.UUID | None
    folder_id: uuid.UUID | None
    client_name: str
    folder_name: str
    who: str  # display name or address; "" for the system
    version: int | None
    restored_from: int | None
    # The document is in the trash now, so the page links to its folder instead.
    trashed: bool


@dataclass(frozen=True, slots=True)
class News:
    changes: list[Change]
    total: int  # all matching changes, of which `changes` are the newest

    @property
    def more(self) -> int:
        return self.total - len(self.changes)


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _moment(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def changes_since(
    session: AsyncSession, principal: Principal, since: datetime, *, limit: int = 20
) -> News:
    """Document changes after `since` in the clients `principal` may see, newest first.

    The caller's own changes are left out: they are not news to them.
    """
    visible = visible_client_ids(principal)
    if visible is not None and not visible:
        return News([], 0)
    query = select(AuditEvent).where(
        col(AuditEvent.action).in_(CHANGES),
        AuditEvent.outcome == "success",
        AuditEvent.ts > timestamp(since),
        col(AuditEvent.client_id).is_not(None),
        col(AuditEvent.actor_id).is_distinct_from(str(principal.user_id)),
    )
    if visible is not None:
        query = query.where(col(AuditEvent.client_id).in_([str(c) for c in visible]))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    events = (
        (await session.execute(query.order_by(col(AuditEvent.seq).desc()).limit(limit)))
        .scalars()
        .all()
    )
    return News(await _describe(session, events), int(total))


async def _describe(session: AsyncSession, events: Sequence[AuditEvent]) -> list[Change]:
    details = {e.seq: json.loads(e.details) for e in events}
    client_ids = {c for e in events if (c := _uuid(e.client_id))}
    folder_ids = {f for d in details.values() if (f := _uuid(d.get("folder_id")))}
    document_ids = {d for e in events if (d := _uuid(e.document_id))}
    actor_ids = {a for e in events if (a := _uuid(e.actor_id))}
    clients = await _names(session, Client, client_ids)
    folders = await _names(session, Folder, folder_ids)
    people: dict[uuid.UUID, str] = {}
    if actor_ids:
        rows = await session.execute(
            select(User.id, User.display_name, User.email, User.role).where(
                col(User.id).in_(actor_ids)
            )
        )
        people = {row[0]: shown_name(row[1], row[2], row[3]) for row in rows.all()}
    trashed: set[uuid.UUID] = set()
    if document_ids:
        rows = await session.execute(
            select(Document.id).where(
                col(Document.id).in_(document_ids), col(Document.deleted_at).is_not(None)
            )
        )
        trashed = set(rows.scalars().all())
    out = []
    for event in events:
        data = details[event.seq]
        document_id = _uuid(event.document_id)
        folder_id = _uuid(data.get("folder_id"))
        actor_id = _uuid(event.actor_id)
        client_id = _uuid(event.client_id)
        out.append(
            Change(
                action=event.action,
                at=_moment(event.ts),
                name=str(data.get("name", "")),
                document_id=document_id,
                folder_id=folder_id,
                client_name=clients.get(client_id, "") if client_id else "",
                folder_name=folders.get(folder_id, "") if folder_id else "",
                who=people.get(actor_id, "") if actor_id else "",
                version=_int(data.get("version")),
                restored_from=_int(data.get("restored_from")),
                trashed=document_id in trashed,
            )
        )
    return out


async def _names(
    session: AsyncSession, model: type[Client] | type[Folder], ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(model.id, model.name).where(col(model.id).in_(ids)))
    return {row[0]: str(row[1]) for row in rows.all()}
