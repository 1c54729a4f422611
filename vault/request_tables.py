"""The tables of document requests and the rules that need no database: limits, item
states, recurrence and the next due date. The lifecycle lives in `vault.document_requests`."""

from __future__ import annotations

import calendar
import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from vault.models import utcnow

MAX_TEXT = 200  # title and item names
MAX_MESSAGE = 2000  # the message to the client, and a rejection reason
MAX_ITEMS = 100
MAX_DUE_IN_DAYS = 366  # a template's default due date, counted from the day it is used
# A second "send a reminder now" within this many seconds is the same reminder (a double
# click, or two staff at once), not another email.
REMIND_AGAIN_AFTER = 600


class Recurrence(StrEnum):
    NONE = "none"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


_MONTHS = {Recurrence.MONTHLY: 1, Recurrence.QUARTERLY: 3, Recurrence.YEARLY: 12}


class ItemStatus(StrEnum):
    REQUESTED = "requested"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class DocumentRequest(SQLModel, table=True):
    __tablename__ = "document_requests"
    __table_args__ = (
        Index("ix_document_requests_open_due", "closed_at", "due_date"),
        # One next occurrence per request, however many closers race.
        UniqueConstraint("previous_id"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    folder_id: uuid.UUID = Field(foreign_key="folders.id")
    title: str = Field(sa_column=Column(String(255), nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    recurrence: Recurrence = Field(sa_column=Column(String(16), nullable=False))
    # Day of month the series is due on: Jan 31 monthly is due Feb 28, then Mar 31 again.
    anchor_day: int = Field(sa_column=Column(Integer, nullable=False))
    previous_id: uuid.UUID | None = Field(default=None, foreign_key="document_requests.id")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    closed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    # Set by the one notifier worker that sent each reminder (see notify.reminders).
    reminded_due_soon_at: datetime | None = None
    reminded_overdue_at: datetime | None = None
    # Set when staff last sent a reminder by hand (see vault.request_changes.remind_now).
    reminded_at: datetime | None = None


class RequestItem(SQLModel, table=True):
    __tablename__ = "request_items"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="document_requests.id", index=True)
    position: int = Field(sa_column=Column(Integer, nullable=False))
    name: str = Field(sa_column=Column(String(255), nullable=False))
    status: ItemStatus = Field(sa_column=Column(String(16), nullable=False))
    document_id: uuid.UUID | None = Field(default=None, foreign_key="documents.id")
    version: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    submitted_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    submitted_at: datetime | None = None
    answered_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    answered_at: datetime | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ItemDocument(SQLModel, table=True):
    """A document submitted for a request item: an item holds several (a statement in three
    files), each once; staff accept or reject the item as a whole."""

    __tablename__ = "request_item_documents"
    __table_args__ = (UniqueConstraint("item_id", "document_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    item_id: uuid.UUID = Field(foreign_key="request_items.id", index=True)
    document_id: uuid.UUID = Field(foreign_key="documents.id", index=True)
    # The version submitted (its latest, when the same document was submitted again).
    version: int = Field(sa_column=Column(Integer, nullable=False))
    submitted_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    submitted_at: datetime = Field(default_factory=utcnow)


class RequestTemplate(SQLModel, table=True):
    """A named checklist the firm reuses for any client (“Year-end tax pack”)."""

    __tablename__ = "request_templates"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    # The name case-folded: "Year-end pack" and "year-end PACK" are one template.
    name_key: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    title: str = Field(sa_column=Column(String(255), nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    # Item names, one per line: a name is one line by construction (whitespace collapsed).
    items: str = Field(sa_column=Column(Text, nullable=False))
    due_in_days: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def item_names(self) -> list[str]:
        return [n for n in self.items.split("\n") if n]


def add_months(start: date, months: int, anchor_day: int) -> date:
    """`start` moved by `months`, on `anchor_day` or the month's last day if shorter."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(anchor_day, last))


def next_due(request: DocumentRequest) -> date | None:
    months = _MONTHS.get(Recurrence(request.recurrence))
    if months is None:
        return None
    return add_months(request.due_date, months, request.anchor_day)
