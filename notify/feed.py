"""The change feed: audit `document.*` events → pending items per recipient → outbox messages.

One transaction reads the events past the durable cursor `notify`, adds an item for each
recipient, due when the recipient's cadence for that client says (see `notify.schedule`),
advances the cursor and turns every (recipient, client) batch that is due into one outbox
message, rendered in the recipient's language and time zone. One message per client, because
cadences and the unsubscribe link are per client.
The cursor row is locked first (`FOR UPDATE` on PostgreSQL, the IMMEDIATE write lock on
SQLite), so concurrent workers take turns. Audit seqs commit in order (each append holds the
`audit_head` row lock until commit), so reading past the cursor never skips an event.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from notify.links import UnsubscribeLinks
from notify.render import Item, new_message_id, render
from notify.schedule import due_at, zone
from vault.accounts import principal_for
from vault.audit import iter_events
from vault.lookalikes import shown_name
from vault.models import AuditEvent, AuditHead, Client, ClientAccess, Cursor, Folder, Role, User
from vault.notifications import (
    Cadence,
    Defaults,
    DeliveryState,
    Notification,
    NotificationItem,
    NotificationPref,
    effective,
)
from vault.policy import can_see_client

CURSOR = "notify"
ACTIONS = frozenset(
    {
        "document.created",
        "document.version_added",
        "document.deleted",
        "document.restored",
        "request.opened",
        "request.submitted",
        "request.answered",
        "request.reminder",
        "link.dropped",
        "quota.threshold",
    }
)
# Reach the staff of the client at once, whatever their cadence (but never when it is off).
URGENT = frozenset({"request.submitted", "quota.threshold"})
_STAFF = frozenset({Role.STAFF, Role.ADMIN})
# Reach only the client's own members: they are the ones who owe the documents.
MEMBERS_ONLY = frozenset({"request.reminder"})
# Files a visitor dropped through an upload link: the client's staff hear of them within one
# batch window, whatever their cadence (never when it is off); members hear of the document
# itself when it is published.
STAFF_ONLY = frozenset({"link.dropped"})
# Only these may attach a publishing message that goes into the email.
_PUBLISHERS = frozenset({Role.STAFF.value, Role.ADMIN.value})


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


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: uuid.UUID
    role: Role
    cadence: Cadence
    daily_hour: int
    tz: ZoneInfo


async def may_receive(session: AsyncSession, user: User | None, client_id: uuid.UUID) -> bool:
    """Whether `user` is active, has accepted their invitation, and may see `client_id` now,
    under the access policy (shared clients included, as `vault.accounts.principal_for`)."""
    if user is None or not user.is_active:
        return False
    # A user without a password never accepted an invitation (or let it expire): the address
    # may be mistyped, so it hears nothing about any client (review item 2).
    if user.password_hash is None:
        return False
    return can_see_client(await principal_for(session, user), client_id)


async def _recipients(
    session: AsyncSession, client_id: uuid.UUID, defaults: Defaults
) -> list[Recipient]:
    """Active members and assigned staff who may see the client now, cadence not `off`;
    for a shared client (the firm's resources) every client user and staff member."""
    members = select(User).join(ClientAccess, col(ClientAccess.user_id) == col(User.id))
    query = members.where(ClientAccess.client_id == client_id, col(User.is_active).is_(True))
    users = list((await session.execute(query)).scalars().all())
    client = await session.get(Client, client_id)
    if client is not None and client.shared:
        # Everyone the policy lets read it, member or not (vault.policy._SHARED).
        known = {u.id for u in users}
        everyone = select(User).where(
            col(User.is_active).is_(True), col(User.role).in_([Role.CLIENT, Role.STAFF])
        )
        users += [u for u in (await session.execute(everyone)).scalars().all() if u.id not in known]
    prefs = {
        pref.user_id: pref
        for pref in (
            await session.execute(
                select(NotificationPref).where(NotificationPref.client_id == client_id)
            )
        )
        .scalars()
        .all()
    }
    out: list[Recipient] = []
    for user in users:
        chosen = effective(prefs.get(user.id), user.role, defaults)
        if chosen.cadence is Cadence.OFF:
            continue
        if await may_receive(session, user, client_id):
            out.append(
                Recipient(
                    user_id=user.id,
                    role=Role(user.role),
                    cadence=chosen.cadence,
                    daily_hour=chosen.daily_hour,
                    tz=zone(user.timezone),
                )
            )
    return out


async def collect(
    session: AsyncSession,
    *,
    now: datetime,
    batch_window_seconds: float,
    defaults: Defaults | None = None,
    limit: int = 1000,
) -> tuple[int, int]:
    """Turn up to `limit` new events into pending items, each due by its recipient's cadence;
    returns (events, items)."""
    cursor = await _lock_cursor(session)
    window = timedelta(seconds=batch_window_seconds)
    defaults = defaults or Defaults()
    recipients: dict[uuid.UUID, list[Recipient]] = {}
    events = items = 0
    last = cursor.seq
    async for event in iter_events(session, after=cursor.seq, batch=limit):
        events += 1
        last = event.seq
        if event.action in ACTIONS and event.outcome == "success" and event.client_id:
            client_id = uuid.UUID(event.client_id)
            if client_id not in recipients:
                recipients[client_id] = await _recipients(session, client_id, defaults)
            for person in recipients[client_id]:
                if event.actor_id is not None and str(person.user_id) == event.actor_id:
                    continue
                if event.action in MEMBERS_ONLY and person.role is not Role.CLIENT:
                    continue
                if event.action in STAFF_ONLY and person.role not in _STAFF:
                    continue
                if event.action in URGENT and person.role in _STAFF:
                    due = now
                elif event.action in STAFF_ONLY:
                    due = now + window
                else:
                    due = due_at(
                        person.cadence,
                        now,
                        window=window,
                        daily_hour=person.daily_hour,
                        tz=person.tz,
                    )
                session.add(
                    NotificationItem(
                        user_id=person.user_id,
                        client_id=client_id,
                        seq=event.seq,
                        created_at=now,
                        due_at=due,
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
    # A client cannot pass for the firm in an email by their display name (review item 11).
    return {str(row.id): shown_name(row.display_name, row.email, row.role) for row in rows}


def _local_time(ts: str, tz: ZoneInfo) -> str:
    """An audit timestamp as the recipient's wall-clock time, naming the zone."""
    try:
        moment = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return ts
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key})"


def _link(public_url: str, event: AuditEvent, details: dict[str, object]) -> str:
    base = public_url.rstrip("/")
    if event.action in STAFF_ONLY and details.get("folder_id"):
        # A drop may still be held for its scan: the folder page shows it either way.
        return f"{base}/folders/{details['folder_id']}"
    return f"{base}/documents/{event.document_id}" if event.document_id else f"{base}/"


def _who(event: AuditEvent, details: dict[str, object], people: dict[str, str]) -> str:
    if event.action in STAFF_ONLY:
        # A visitor has no account: the name and address they gave on the drop page.
        return f"{details.get('uploader_name', '')} <{details.get('uploader_email', '')}>"
    return people.get(event.actor_id or "", "ClientVault")


def _wording(action: str, details: dict[str, object]) -> str:
    """The catalogue key of an event: a reminder says whether the request is due or late."""
    if action == "request.reminder":
        return f"{action}.{details.get('stage', 'due_soon')}"
    return action


def _message(event: AuditEvent, details: dict[str, object]) -> str:
    text = details.get("message")
    if not isinstance(text, str) or event.actor_role not in _PUBLISHERS:
        return ""
    return text


async def build_due(
    session: AsyncSession, *, now: datetime, public_url: str, links: UnsubscribeLinks
) -> int:
    """One outbox message per recipient and client whose oldest pending item is due;
    returns the count. A recipient who can no longer see the client gets nothing."""
    due = (
        await session.execute(
            select(NotificationItem.user_id, NotificationItem.client_id)
            .group_by(col(NotificationItem.user_id), col(NotificationItem.client_id))
            .having(func.min(NotificationItem.due_at) <= now)
        )
    ).all()
    made = 0
    for user_id, client_id in due:
        pending = (
            (
                await session.execute(
                    select(NotificationItem.seq).where(
                        NotificationItem.user_id == user_id,
                        NotificationItem.client_id == client_id,
                    )
                )
            )
            .scalars()
            .all()
        )
        seqs = sorted(pending)
        await session.execute(
            delete(NotificationItem).where(
                col(NotificationItem.user_id) == user_id,
                col(NotificationItem.client_id) == client_id,
                col(NotificationItem.seq).in_(seqs),
            )
        )
        user = await session.get(User, user_id)
        if user is None or not await may_receive(session, user, client_id):
            continue
        tz = zone(user.timezone)
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
        clients = await _names(session, Client, {str(client_id)})
        folders = await _names(
            session, Folder, {str(d["folder_id"]) for d in details.values() if d.get("folder_id")}
        )
        people = await _people(session, {e.actor_id for e in events if e.actor_id})
        client_name = clients.get(str(client_id), "")
        items = [
            Item(
                action=_wording(e.action, details[e.seq]),
                name=str(details[e.seq].get("name", "")),
                client=client_name,
                folder=folders.get(str(details[e.seq].get("folder_id", "")), ""),
                who=_who(e, details[e.seq], people),
                when=_local_time(e.ts, tz),
                link=_link(public_url, e, details[e.seq]),
                message=_message(e, details[e.seq]),
            )
            for e in events
        ]
        rendered = render(
            items,
            locale=user.locale,
            client=client_name,
            unsubscribe_url=links.url(user.id, client_id),
        )
        session.add(
            Notification(
                user_id=user.id,
                client_id=client_id,
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
