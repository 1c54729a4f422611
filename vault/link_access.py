"""Unlocking a protected link: its password, or a one-time code emailed to its recipient.

A visitor who passes either gets a grant: a random secret in a short-lived cookie, of which
only the SHA-256 is stored, bound to that one link (a grant of one link opens no other).
Guesses of passwords and codes count against the link and against the visitor's address
(`vault.ratelimit`), so neither one link nor one address can be guessed at quickly.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Integer, String
from sqlmodel import Field, SQLModel

from vault.models import utcnow


class LinkGrant(SQLModel, table=True):
    """A visitor's browser that unlocked one link (password or code) until `expires_at`."""

    __tablename__ = "link_grants"
    # SHA-256 of the cookie value: a database reader cannot replay grants.
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    link_id: uuid.UUID = Field(foreign_key="links.id", index=True)
    via: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class LinkCode(SQLModel, table=True):
    """A one-time code sent to a link's recipient; only its keyed hash is stored."""

    __tablename__ = "link_codes"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    link_id: uuid.UUID = Field(foreign_key="links.id", index=True)
    code_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    used_at: datetime | None = None
