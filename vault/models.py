"""Database tables (SQLModel). Every change to these goes with an Alembic migration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    CLIENT = "client"
    STAFF = "staff"
    AUDITOR = "auditor"
    ADMIN = "admin"


class TokenScope(StrEnum):
    READ = "read"
    READ_WRITE = "read-write"


# Folders without a parent share this marker in `parent_ref`, because SQL treats NULLs as
# distinct and a unique constraint over a nullable parent would let root names collide.
ROOT_REF = "root"


class Client(SQLModel, table=True):
    __tablename__ = "clients"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    name_key: str = Field(sa_column=Column(String(1024), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow)
    # The firm's resources (guides, forms, FAQs): every signed-in user may read it.
    shared: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # An archived client is read-only and left out of lists until an admin restores it.
    archived_at: datetime | None = None


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    display_name: str = Field(default="", max_length=200)
    role: Role = Field(sa_column=Column(String(16), nullable=False))
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # The language and IANA time zone of the emails this user receives.
    locale: str = Field(default="en", sa_column=Column(String(16), nullable=False))
    timezone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False))
    # The home page shows what changed since the visit before this one.
    last_seen_at: datetime | None = None
    previous_seen_at: datetime | None = None


class ClientAccess(SQLModel, table=True):
    """Membership of a client user, or assignment of a staff member, to a client."""

    __tablename__ = "client_access"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


def _lookalike_key() -> Column[str]:
    # Set from `name` as each row is written (`_set_lookalike_keys`).
    return Column(String(32), nullable=False, server_default="")


class Folder(SQLModel, table=True):
    __tablename__ = "folders"
    __table_args__ = (
        UniqueConstraint("client_id", "parent_ref", "name_key"),
        Index("ix_folders_lookalike", "client_id", "parent_ref", "lookalike_key"),
        Index("ix_folders_lookalike_folded", "client_id", "parent_ref", "lookalike_folded_key"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="folders.id", index=True)
    parent_ref: str = Field(sa_column=Column(String(36), nullable=False))
    name: str = Field(sa_column=Column(String(255), nullable=False))
    name_key: str = Field(sa_column=Column(String(1024), nullable=False))
    # `vault.lookalikes.lookalike_keys(name)`: the folder's look-alikes share one of them.
    lookalike_key: str = Field(default="", sa_column=_lookalike_key())
    lookalike_folded_key: str = Field(default="", sa_column=_lookalike_key())
    created_at: datetime = Field(default_factory=utcnow)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


class Document(SQLModel, table=True):
    __tablename__ = "documents"
    __table_args__ = (
        # One live document per name in a folder; trashed ones step aside.
        Index(
            "uq_documents_live_name",
            "folder_id",
            "name_key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_documents_lookalike", "folder_id", "lookalike_key"),
        Index("ix_documents_lookalike_folded", "folder_id", "lookalike_folded_key"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    folder_id: uuid.UUID = Field(foreign_key="folders.id", index=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    name_key: str = Field(sa_column=Column(String(1024), nullable=False))
    lookalike_key: str = Field(default="", sa_column=_lookalike_key())
    lookalike_folded_key: str = Field(default="", sa_column=_lookalike_key())
    current_version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None
    deleted_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


@event.listens_for(Folder, "before_insert")
@event.listens_for(Folder, "before_update")
@event.listens_for(Document, "before_insert")
@event.listens_for(Document, "before_update")
def _set_lookalike_keys(_mapper: Mapper[object], _connection: Connection, row: object) -> None:
    # Here, not where names are chosen, so that no way of writing a name can leave its keys
    # behind. Imported late: `vault.lookalikes` imports this module.
    from vault.lookalikes import lookalike_keys

    assert isinstance(row, Folder | Document)
    state = inspect(row)
    # A stored row's keys change only with its name (a new version updates its document).
    if state.has_identity and not state.attrs.name.history.has_changes():
        return
    row.lookalike_key, row.lookalike_folded_key = lookalike_keys(row.name)


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(foreign_key="documents.id", index=True)
    number: int
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=255)
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    storage_key: str = Field(sa_column=Column(String(512), nullable=False, unique=True))
    object_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    kek_id: str = Field(max_length=64, index=True)
    wrapped_dek: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # A copy of the object's 128-byte header saves one ranged GET per download; a forged
    # copy only makes decryption fail, since the keys are derived from the header itself.
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AccessToken(SQLModel, table=True):
    __tablename__ = "access_tokens"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    name: str = Field(default="", max_length=200)
    # SHA-256 of the token: tokens carry 256 random bits, so a fast hash is enough
    # (ASVS 6.5.2 allows it above 112 bits) and lookups stay one indexed query.
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    scope: TokenScope = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    # Where the token was last used from, shown to its owner beside `last_used_at`.
    last_used_ip: str | None = Field(default=None, sa_column=Column(String(64)))
    revoked_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One entry of the tamper-evident audit log; see docs/audit-log.md for the encoding."""

    __tablename__ = "audit_events"
    # Searches page newest first by seq: each filter's index ends with seq (migration 0011).
    __table_args__ = (
        Index("ix_audit_events_client_seq", "client_id", "seq"),
        Index("ix_audit_events_actor_seq", "actor_id", "seq"),
        Index("ix_audit_events_document_seq", "document_id", "seq"),
        Index("ix_audit_events_action_outcome_seq", "action", "outcome", "seq"),
        Index("ix_audit_events_outcome_seq", "outcome", "seq"),
        Index("ix_audit_events_client_ts", "client_id", "ts"),
        Index("ix_audit_events_ip_seq", "ip", "seq"),
    )
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    ts: str = Field(sa_column=Column(String(24), nullable=False, index=True))
    actor_id: str | None = Field(default=None, sa_column=Column(String(36)))
    actor_role: str | None = Field(default=None, sa_column=Column(String(16)))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    client_id: str | None = Field(default=None, sa_column=Column(String(36)))
    target_type: str | None = Field(default=None, sa_column=Column(String(32)))
    target_id: str | None = Field(default=None, sa_column=Column(String(64)))
    document_id: str | None = Field(default=None, sa_column=Column(String(36)))
    ip: str | None = Field(default=None, sa_column=Column(String(64)))
    user_agent: str | None = Field(default=None, sa_column=Column(String(256)))
    outcome: str = Field(sa_column=Column(String(16), nullable=False))
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    leaf_hash: str = Field(sa_column=Column(String(64), nullable=False))
    # Format 2 (migration 0013) also hashes who the actor and the target were at the time,
    # so the event still reads the same after a rename or a deletion.
    v: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    actor_email: str | None = Field(default=None, sa_column=Column(String(320)))
    actor_name: str | None = Field(default=None, sa_column=Column(String(200)))
    target_label: str | None = Field(default=None, sa_column=Column(String(1024)))


class AuditHead(SQLModel, table=True):
    """The newest entry of the chain, a single row locked by every append (serialises writers)."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    leaf_hash: str = Field(sa_column=Column(String(64), nullable=False))


class AuditNode(SQLModel, table=True):
    """A stored RFC 9162 subtree hash: the complete subtree of 2**level leaves that starts
    at leaf `index * 2**level`. Only levels from `vault.audit.tree.STORED_LEVEL` up are kept,
    so a proof reads O(log n) rows and at most one chunk of leaf hashes (a cache of the
    leaves: `clientvault audit verify` recomputes the tree without it)."""

    __tablename__ = "audit_tree_nodes"
    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    index: int = Field(sa_column=Column("idx", BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class AuditTreeState(SQLModel, table=True):
    """How far the stored tree reaches and the newest checkpoint written to the object
    store; a single row, locked by whoever extends the tree or writes a checkpoint."""

    __tablename__ = "audit_tree_state"
    id: int = Field(default=1, primary_key=True)
    leaves: int = Field(sa_column=Column(BigInteger, nullable=False))
    checkpoint_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    checkpoint_key: str | None = Field(default=None, sa_column=Column(String(256)))


class Cursor(SQLModel, table=True):
    """Durable positions of background readers of the audit log (e.g. the notifier)."""

    __tablename__ = "cursors"
    name: str = Field(primary_key=True, max_length=64)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class VersionReceipt(SQLModel, table=True):
    """The first time a user downloaded a version in full (a delivery receipt)."""

    __tablename__ = "version_receipts"
    version_id: uuid.UUID = Field(foreign_key="versions.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    completed_at: datetime = Field(default_factory=utcnow)


class Announcement(SQLModel, table=True):
    """A firm-wide notice shown to every signed-in user until it expires or is withdrawn."""

    __tablename__ = "announcements"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(sa_column=Column(String(200), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
