"""The change feed: audit `document.*` events → pending items per recipient → outbox messages.

One transaction reads the events past the durable cursor `notify`, adds an item for each
recipient, advances the cursor and turns every batch that is due into one outbox message.
The cursor row is locked first (`FOR UPDATE` on PostgreSQL, the IMMEDIATE write lock on
SQLite), so concurrent workers take turns. Audit seqs commit in order (each append holds the
`audit_head` row lock until commit), so reading past the cursor never skips an event.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from notify.render import Item, new_message_id, render
from vault.audit import iter_events
from vault.models import AuditEvent, AuditHead, Client, ClientAccess, Cursor, Folder, Role, User
from vault.notifications import (
    Cadence,
    DeliveryState,
    Notification,
    NotificationItem,
    NotificationPref,
)
from vault.policy import Principal, can_see_client

CURSOR = "notify"
ACTIONS = frozenset({"document.created", "document.version_added", "document.deleted"})


@dataclass(frozen=True, slots=True)
class FeedResult:
    events: int  # audit events read
    items: int  # pending items added
    messages: int  # outbox messages created


async def set_cadence(
    session: AsyncSession, user_id: uuid.UUID, client_id: uuid.UUID, cadence: Cadence
) -> None:
    pref = await session.get(NotificationPref, (user_id, client_id))
    if pref is None:
        pref = NotificationPref(user_id=user_id, client_id=client_id, cadence=cadence)
    else:
        pref.cadence = cadence
        pref.updated_at = datetime.now(UTC)
    session.add(pref)
    await session.flush()


async def _lock_cursor(session: AsyncSession) -> Cursor:
    cursor = (
        await session.execute(select(Cursor).where(Cursor.name == CURSOR).with_for_update())
    ).scalar_one_or_none()
    if cursor is None:
        # Normally created by migration 0002; if removed, restart at the end, not the start.
        head = (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar_one()
        cursor = Cursor(name=CURSOR, seq=head)
        session.add(cursor)
        await session.flush()
    return cursor


async def _recipients(session: AsyncSession, client_id: uuid.UUID) -> list[uuid.UUID]:
    """Active members and assigned staff who may see the client now, cadence not `off`."""
    users = (
        (
            await session.execute(
                select(User)
                .join(ClientAccess, col(ClientAccess.user_id) == col(User.id))
                .where(ClientAccess.client_id == client_id, col(User.is_active).is_(True))
            )
        )
        .scalars()
        .all()
    )
    off = set(
        (
            await session.execute(
                select(NotificationPref.user_id).where(
                    NotificationPref.client_id == client_id,
                    NotificationPref.cadence == Cadence.OFF,
                )
            )
        )
        .scalars()
        .all()
    )
    out: list[uuid.UUID] = []
    for user in users:
        if user.id in off:
            continue
        access = (
            (
                await session.execute(
                    select(ClientAccess.client_id).where(ClientAccess.user_id == user.id)
                )
            )
            .scalars()
            .all()
        )
        principal = Principal(
            user_id=user.id, email=user.email, role=Role(user.role), client_ids=frozenset(access)
        )
        if can_see_client(principal, client_id):
            out.append(user.id)
    return out


async def collect(
    session: AsyncSession, *, now: datetime, batch_window_seconds: float, limit: int = 1000
) -> tuple[int, int]:
    """Turn up to `limit` new events into pending items; returns (events, items)."""
    cursor = await _lock_cursor(session)
    window = timedelta(seconds=batch_window_seconds)
    recipients: dict[uuid.UUID, list[uuid.UUID]] = {}
    events = items = 0
    last = cursor.seq
    async for event in iter_events(session, after=cursor.seq, batch=limit):
        events += 1
        last = event.seq
        if event.action in ACTIONS and event.outcome == "success" and event.client_id:
            client_id = uuid.UUID(event.client_id)
            if client_id not in recipients:
                recipients[client_id] = await _recipients(session, client_id)
            for user_id in recipients[client_id]:
                if event.actor_id is not None and str(user_id) == event.actor_id:
                    continue
                session.add(
                    NotificationItem(
                        user_id=user_id,
                        client_id=client_id,
                        seq=event.seq,
                        created_at=now,
                        due_at=now + window,
                    )
                )
                items += 1
        if events >= limit:
            break
    cursor.seq = last
    session.add(cursor)
    await session.flush()
    return events, items


async def _names(
    session: AsyncSession, model: type[Client] | type[Folder], ids: set[str]
) -> dict[str, str]:
    if not ids:
        return {}
    keys = [uuid.UUID(i) for i in ids]
    rows = (
        await session.execute(select(model.id, model.name).where(col(model.id).in_(keys)))
    ).all()
    return {str(row[0]): str(row[1]) for row in rows}


async def _people(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    keys = [uuid.UUID(i) for i in ids]
    rows = (await session.execute(select(User).where(col(User.id).in_(keys)))).scalars().all()
    return {str(row.id): row.display_name or row.email for row in rows}


async def build_due(session: AsyncSession, *, now: datetime, public_url: str) -> int:
    """One outbox message per recipient whose oldest pending item is due; returns the count."""
    due_users = (
        (
            await session.execute(
                select(NotificationItem.user_id)
                .group_by(col(NotificationItem.user_id))
                .having(func.min(NotificationItem.due_at) <= now)
            )
        )
        .scalars()
        .all()
    )
    made = 0
    for user_id in due_users:
        pending = (
            (
                await session.execute(
                    select(NotificationItem)
                    .where(NotificationItem.user_id == user_id)
                    .order_by(col(NotificationItem.seq))
                )
            )
            .scalars()
            .all()
        )
        seqs = [p.seq for p in pending]
        await session.execute(
            delete(NotificationItem).where(
                col(NotificationItem.user_id) == user_id, col(NotificationItem.seq).in_(seqs)
            )
        )
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            continue
        events = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(col(AuditEvent.seq).in_(seqs))
                    .order_by(col(AuditEvent.seq))
                )
            )
            .scalars()
            .all()
        )
        details = {e.seq: json.loads(e.details) for e in events}
        clients = await _names(session, Client, {e.client_id for e in events if e.client_id})
        folders = await _names(
            session, Folder, {str(d["folder_id"]) for d in details.values() if d.get("folder_id")}
        )
        people = await _people(session, {e.actor_id for e in events if e.actor_id})
        items = [
            Item(
                action=e.action,
                name=str(details[e.seq].get("name", "")),
                client=clients.get(e.client_id or "", ""),
                folder=folders.get(str(details[e.seq].get("folder_id", "")), ""),
                who=people.get(e.actor_id or "", "ClientVault"),
                when=e.ts,
                link=f"{public_url.rstrip('/')}/documents/{e.document_id}",
            )
            for e in events
        ]
        rendered = render(items)
        session.add(
            Notification(
                user_id=user.id,
                email=user.email,
                message_id=new_message_id(),
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                seqs=json.dumps(seqs),
                state=DeliveryState.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        made += 1
    await session.flush()
    return made
