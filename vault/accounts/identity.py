"""Tables of sign-in: browser sessions, second factors, emailed links and rate limits.

The functions that use them live beside this module in `vault.accounts` (`sessions`, `mfa`,
`email_links` and `ratelimit`); the tables sit together so one migration (0004) matches one
module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String
from sqlmodel import Field, SQLModel

from vault.models import utcnow


class SessionStage(StrEnum):
    """How far a browser session has got through sign-in."""

    SECOND_FACTOR = "second-factor"  # password accepted, TOTP or recovery code pending
    ENROL = "enrol"  # signed in, but must enrol TOTP before anything else
    FULL = "full"


class BrowserSession(SQLModel, table=True):
    """A server-side session, so it can be listed and revoked (a signed cookie cannot)."""

    __tablename__ = "sessions"
    # SHA-256 of the cookie value: a database reader cannot replay sessions.
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    # A short public handle, for listing and revoking without revealing the secret.
    handle: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    stage: SessionStage = Field(sa_column=Column(String(16), nullable=False))
    csrf_token: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # absolute timeout
    ip: str | None = Field(default=None, sa_column=Column(String(64)))
    user_agent: str | None = Field(default=None, sa_column=Column(String(256)))
    revoked_at: datetime | None = None


class TotpCredential(SQLModel, table=True):
    """A user's TOTP secret, encrypted under a keyring-wrapped key."""

    __tablename__ = "totp_credentials"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    kek_id: str = Field(max_length=64)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    secret_ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None  # None while enrolment awaits its first code
    # The highest time step accepted: a code for this step or an earlier one is a replay.
    last_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_codes"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    code_hash: str = Field(sa_column=Column(String(255), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None


class EmailLinkPurpose(StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password-reset"  # noqa: S105 (a purpose name, not a secret)


class EmailLink(SQLModel, table=True):
    """A single-use, expiring link sent by email (invitation or password reset)."""

    __tablename__ = "email_links"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    purpose: EmailLinkPurpose = Field(sa_column=Column(String(32), nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class RateLimit(SQLModel, table=True):
    """Failures counted per key (an account or an address), shared by every app process."""

    __tablename__ = "rate_limits"
    key: str = Field(sa_column=Column(String(128), primary_key=True))
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    window_started_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
