"""The quarantine's table: versions held back until a scanner has passed them
(vault/quarantine.py holds the rules). A module of its own so that the uploads package can
see which names held versions keep without importing the quarantine's logic, which itself
uses the uploads package."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Column, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from vault.models import utcnow


class ScanState(StrEnum):
    PENDING = "pending"
    CLEAN = "clean"
    INFECTED = "infected"
    # Too large for the scanner's configured limit, or no scanner configured.
    NOT_SCANNED = "not_scanned"


class HeldVersion(SQLModel, table=True):
    """A version that went through quarantine; held while `published_version` and
    `deleted_at` are both empty."""

    __tablename__ = "quarantine"
    version_id: uuid.UUID = Field(primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    folder_id: uuid.UUID = Field(foreign_key="folders.id", index=True)
    # No foreign key: a new document is only created when its first version is published.
    document_id: uuid.UUID = Field(index=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    is_new: bool = Field(sa_column=Column(Boolean, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=255)
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    storage_key: str = Field(sa_column=Column(String(512), nullable=False, unique=True))
    object_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    # NULL once the row no longer holds its version (published, or deleted): `forget_key`.
    kek_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    wrapped_dek: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    header: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Extra facts for the publishing event (e.g. the upload, or the link a drop came by).
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    signature: str | None = Field(default=None, sa_column=Column(String(200)))
    # Why it is not scanned, or why publishing it failed; shown to staff.
    reason: str | None = Field(default=None, sa_column=Column(String(300)))
    attempts: int = 0
    # A scan worker's hold on the row (several may run), and the time before which the
    # row is not picked up again (its hold, or the pause after the scanner was down).
    claim: str | None = Field(default=None, sa_column=Column(String(36)))
    not_before: datetime | None = None
    scanned_at: datetime | None = None
    decided_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = None
    published_version: int | None = None
    deleted_at: datetime | None = None

    @property
    def held(self) -> bool:
        return self.published_version is None and self.deleted_at is None
