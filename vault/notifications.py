"""Tables of the email notifier (the `notify` package fills and drains them), and the
preferences users set on it.

`notification_items` holds changes waiting to be batched per recipient, `notifications` is the
outbox of rendered messages, and `notification_prefs` the per-client cadence of each user.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Integer, String, Text, UniqueConstraint, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import InvalidInput, NotFoundError
from vault.models import Client, Role, User, utcnow
from vault.policy import Principal, can_see_client


class Cadence(StrEnum):
    """How often a user hears about one client's changes; only an item's `due_at` differs."""

    IMMEDIATE = "immediate"  # batched by the window, then sent
    EVERY_15_MINUTES = "every_15_minutes"  # at :00, :15, :30 and :45
    HOURLY = "hourly"  # at the top of each hour, local time
    DAILY = "daily"  # once a day at the user's chosen local hour
    OFF = "off"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # Not sent because the recipient lost access (or was deactivated) before delivery.
    CANCELLED = "cancelled"


class NotificationPref(SQLModel, table=True):
    """A user's cadence for one client; no row means the default for the user's role."""

    __tablename__ = "notification_prefs"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", primary_key=True)
    cadence: Cadence = Field(sa_column=Column(String(16), nullable=False))
    # Local hour (0-23) of the daily digest; None means the configured default.
    daily_hour: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class NotificationItem(SQLModel, table=True):
    """One audit event waiting to go out to one recipient in their next batch."""

    __tablename__ = "notification_items"
    __table_args__ = (UniqueConstraint("user_id", "seq"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id")
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    due_at: datetime = Field(index=True)


class Notification(SQLModel, table=True):
    """One rendered email in the outbox, with its delivery state."""

    __tablename__ = "notifications"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    # The client the message is about (each message covers one); None only for rows that
    # predate migration 0003.
    client_id: uuid.UUID | None = Field(default=None, foreign_key="clients.id", index=True)
    email: str = Field(sa_column=Column(String(320), nullable=False))
    # Stable across retries, so a message resent after a crash is recognisable as the same.
    message_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    # The audit seqs this message covers, as a JSON list.
    seqs: str = Field(sa_column=Column(Text, nullable=False))
    state: DeliveryState = Field(sa_column=Column(String(16), nullable=False, index=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(index=True)
    claimed_at: datetime | None = None
    # Set by each claim; only the holder of the current claim may record the outcome.
    claim_token: str | None = Field(default=None, sa_column=Column(String(36)))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Defaults:
    """What applies when a user has no preference row for a client."""

    client_cadence: Cadence = Cadence.IMMEDIATE
    staff_cadence: Cadence = Cadence.EVERY_15_MINUTES
    daily_hour: int = 8

    def cadence_for(self, role: Role | str) -> Cadence:
        return self.client_cadence if Role(role) is Role.CLIENT else self.staff_cadence


@dataclass(frozen=True, slots=True)
class Effective:
    """A user's cadence for one client after defaults are applied."""

    cadence: Cadence
    daily_hour: int
    is_default: bool


def effective(pref: NotificationPref | None, role: Role | str, defaults: Defaults) -> Effective:
    if pref is None:
        return Effective(defaults.cadence_for(role), defaults.daily_hour, True)
    hour = defaults.daily_hour if pref.daily_hour is None else pref.daily_hour
    return Effective(Cadence(pref.cadence), hour, False)


async def preferences(
    session: AsyncSession, user_id: uuid.UUID
) -> dict[uuid.UUID, NotificationPref]:
    rows = (
        (await session.execute(select(NotificationPref).where(NotificationPref.user_id == user_id)))
        .scalars()
        .all()
    )
    return {row.client_id: row for row in rows}


async def set_preference(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
    client_id: uuid.UUID,
    cadence: Cadence,
    *,
    daily_hour: int | None = None,
    via: str = "settings",
) -> NotificationPref:
    """Store a user's cadence for a client, audited; `off` also drops what is still pending.

    The caller has checked that the user may set it (their own, or a signed unsubscribe link).
    """
    if daily_hour is not None and not 0 <= daily_hour <= 23:
        raise InvalidInput("daily_hour is 0..23", field="daily_hour", rule="range")
    pref = await session.get(NotificationPref, (user.id, client_id))
    if pref is None:
        pref = NotificationPref(user_id=user.id, client_id=client_id, cadence=cadence)
    pref.cadence = cadence
    pref.daily_hour = daily_hour
    pref.updated_at = datetime.now(UTC)
    session.add(pref)
    if cadence is Cadence.OFF:
        # "Off" takes effect now, not after the digest that was already building.
        await session.execute(
            delete(NotificationItem).where(
                col(NotificationItem.user_id) == user.id,
                col(NotificationItem.client_id) == client_id,
            )
        )
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.NOTIFICATION_PREFERENCE_CHANGED,
        client_id=client_id,
        target_type="user",
        target_id=user.id,
        details={"cadence": cadence.value, "daily_hour": daily_hour, "via": via},
    )
    return pref


@dataclass(frozen=True, slots=True)
class Choice:
    """What a user asks for one client: a cadence, and the local hour of a daily email."""

    cadence: Cadence
    daily_hour: int


async def hearable_clients(
    session: AsyncSession, principal: Principal, client_ids: Iterable[uuid.UUID]
) -> list[Client]:
    """The clients named, each one the caller hears of.

    Raises:
        NotFoundError: one of them does not exist or is not the caller's (the two read the same).
    """
    found = []
    for client_id in dict.fromkeys(client_ids):
        client = await session.get(Client, client_id)
        if client is None or not may_hear_of(principal, client):
            raise NotFoundError("client not found")
        found.append(client)
    return found


async def set_preferences(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    user: User,
    choices: Mapping[uuid.UUID, Choice],
    defaults: Defaults,
) -> list[uuid.UUID]:
    """Set the user's own cadences for several clients at once, in the caller's transaction:
    every client is checked before any is changed, and only those whose setting differs from
    what already applies are stored (each audited as `set_preference` does). Saving what
    already applies would turn a default into a fixed choice and log noise.

    Returns:
        The ids of the clients whose setting changed.

    Raises:
        NotFoundError: a client is not one the user hears of; nothing was changed.
    """
    await hearable_clients(session, principal, choices)
    current = await preferences(session, user.id)
    changed = []
    for client_id, choice in choices.items():
        daily_hour = choice.daily_hour if choice.cadence is Cadence.DAILY else None
        now = effective(current.get(client_id), user.role, defaults)
        if choice.cadence is now.cadence and (daily_hour is None or daily_hour == now.daily_hour):
            continue
        await set_preference(
            session, context, user, client_id, choice.cadence, daily_hour=daily_hour
        )
        changed.append(client_id)
    return changed


async def show_unsubscribe(
    session: AsyncSession, context: audit.AuditContext, user_id: uuid.UUID, client_id: uuid.UUID
) -> None:
    """Record that an unsubscribe link's page was shown (it names the user and the client)."""
    await audit.record(
        session,
        context,
        AuditAction.NOTIFICATION_UNSUBSCRIBE_VIEWED,
        client_id=client_id,
        target_type="user",
        target_id=user_id,
    )


def may_hear_of(principal: Principal, client: Client) -> bool:
    """Emails reach members and assigned staff; admins see every client but hear of none."""
    return client.id in principal.client_ids and can_see_client(principal, client.id)


# Delivery events: the outbox worker reports each outcome, an admin's look and retry.


def _delivery(row: Notification) -> dict[str, object]:
    return {
        "recipient_id": str(row.user_id),
        "to": row.email,
        "message_id": row.message_id,
        "seqs": json.loads(row.seqs),
        "attempts": row.attempts,
    }


async def record_sent(session: AsyncSession, row: Notification) -> None:
    """Audit that the message was handed to the mail server."""
    await audit.record(
        session,
        audit.SYSTEM,
        AuditAction.NOTIFICATION_SENT,
        client_id=row.client_id,
        target_type="notification",
        target_id=row.id,
        details={**_delivery(row), "subject": row.subject},
    )


async def record_failed(session: AsyncSession, row: Notification, *, permanent: bool) -> None:
    """Audit that the message will not be tried again (`row.last_error` says why)."""
    await audit.record(
        session,
        audit.SYSTEM,
        AuditAction.NOTIFICATION_FAILED,
        outcome="error",
        client_id=row.client_id,
        target_type="notification",
        target_id=row.id,
        details={**_delivery(row), "error": row.last_error, "permanent": permanent},
    )


async def record_failed_listed(
    session: AsyncSession, context: audit.AuditContext, count: int
) -> None:
    """Audit that someone was shown `count` failed messages (they name recipients)."""
    await audit.record(
        session, context, AuditAction.NOTIFICATION_FAILED_LISTED, details={"notifications": count}
    )


async def record_retried(
    session: AsyncSession, context: audit.AuditContext, row: Notification
) -> None:
    """Audit that someone queued a failed message again."""
    await audit.record(
        session,
        context,
        AuditAction.NOTIFICATION_RETRIED,
        client_id=row.client_id,
        target_type="notification",
        target_id=row.id,
        details={"message_id": row.message_id, "last_error": row.last_error},
    )
