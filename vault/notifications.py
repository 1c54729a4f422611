"""Tables of the email notifier (the `notify` package fills and drains them).

`notification_items` holds changes waiting to be batched per recipient, `notifications` is the
outbox of rendered messages, and `notification_prefs` the per-client cadence of each user.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from vault.models import utcnow


class Cadence(StrEnum):
    IMMEDIATE = "immediate"  # batched by the window, then sent
    OFF = "off"
    # "hourly" and "daily" fit here later: they only change an item's `due_at`.


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class NotificationPref(SQLModel, table=True):
    """A user's cadence for one client; no row means `immediate`."""

    __tablename__ = "notification_prefs"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", primary_key=True)
    cadence: Cadence = Field(sa_column=Column(String(16), nullable=False))
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
