"""Records-management tables: quotas, retention policies and legal holds; and the client
row lock that orders their changes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import NotFoundError
from vault.models import Client, utcnow

# The policy set on a client as a whole, rather than on one of its folders, has this scope.
CLIENT_SCOPE = "client"


class ClientQuota(SQLModel, table=True):
    """A client's own quota (NULL: the firm-wide default) and the highest usage alert sent.

    The row is also the lock that admits uploads to the client one at a time, so concurrent
    uploads cannot jointly overshoot the quota.
    """

    __tablename__ = "client_quotas"
    client_id: uuid.UUID = Field(foreign_key="clients.id", primary_key=True)
    quota_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # 0, 80, 90 or 100: the alerts already sent for the current climb (lowered when usage falls).
    alerted_percent: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class QuotaReservation(SQLModel, table=True):
    """Bytes promised to a one-shot or form upload while it streams; gone once it commits or
    fails, and ignored after `expires_at` should its process die in between."""

    __tablename__ = "quota_reservations"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class RetentionPolicy(SQLModel, table=True):
    """What a client or folder keeps; a folder without its own policy inherits its parent's."""

    __tablename__ = "retention_policies"
    __table_args__ = (UniqueConstraint("client_id", "scope"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    # CLIENT_SCOPE or the folder's id: unique per client, which a nullable folder id is not.
    scope: str = Field(sa_column=Column(String(36), nullable=False))
    keep_versions: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    keep_days: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    trash_days: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


class LegalHold(SQLModel, table=True):
    """A hold on a client (`folder_id` NULL) or a folder and everything under it."""

    __tablename__ = "legal_holds"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    folder_id: uuid.UUID | None = Field(default=None, foreign_key="folders.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    placed_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None
    released_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    release_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


async def lock_client(session: AsyncSession, client_id: uuid.UUID) -> None:
    """Lock the client's row until the transaction ends: it serialises upload admissions,
    usage alerts, legal holds and the deletions a hold must stop, so a hold placed at the
    same moment as a deletion either comes first and stops it, or comes after it (FOR UPDATE
    on PostgreSQL; SQLite's IMMEDIATE transactions already run one at a time).

    Raises:
        NotFoundError: there is no such client.
    """
    found = await session.execute(select(Client.id).where(Client.id == client_id).with_for_update())
    if found.first() is None:
        raise NotFoundError("client not found")


async def record_viewed(
    session: AsyncSession, context: audit.AuditContext, client_id: uuid.UUID, what: str
) -> None:
    """Audit a read of the client's records (`what`: usage, retention, holds, ...), by the
    API, the pages or the command line alike."""
    await audit.record(
        session,
        context,
        AuditAction.RECORDS_VIEWED,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
        details={"what": what},
    )
