"""The keyring as the console shows and changes it: which KEKs exist, which is active, how
many data keys each still wraps, rotation, and re-wrapping onto the active KEK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, maintenance
from vault.accounts.identity import TotpCredential
from vault.audit.actions import AuditAction
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import NotFoundError
from vault.models import Version
from vault.policy import Permission, Principal, allows
from vault.quarantine_tables import HeldVersion
from vault.thumbnails import Thumbnail
from vault.uploads.resumable import Upload


@dataclass(frozen=True, slots=True)
class KekUse:
    """How many keys one KEK still wraps, table by table."""

    kek_id: str
    active: bool
    versions: int  # document versions
    quarantined: int  # versions held in quarantine (their key goes when the row is discarded)
    uploads: int  # resumable uploads, open or complete until their row expires
    thumbnails: int
    totp_secrets: int  # second-factor secrets

    @property
    def data_keys(self) -> int:
        """The data keys of stored bytes: versions, quarantine, uploads and thumbnails."""
        return self.versions + self.quarantined + self.uploads + self.thumbnails

    @property
    def keys(self) -> int:
        return self.data_keys + self.totp_secrets


@dataclass(frozen=True, slots=True)
class KeyringState:
    keks: list[KekUse]

    @property
    def to_rewrap(self) -> int:
        """Keys still wrapped by a KEK that is not the active one."""
        return sum(k.keys for k in self.keks if not k.active)

    @property
    def total(self) -> int:
        return sum(k.keys for k in self.keks)


def _require_admin(principal: Principal) -> None:
    if not allows(principal, Permission.MANAGE, None):
        raise NotFoundError("no such page")


async def _counts(session: AsyncSession, kek: Any, wrapped: Any) -> dict[str, int]:
    """Rows per KEK, leaving out rows whose key is already destroyed (NULL)."""
    rows = await session.execute(
        select(kek, func.count()).where(kek.is_not(None), wrapped.is_not(None)).group_by(kek)
    )
    return {str(k): int(n) for k, n in rows.all()}


async def state(session: AsyncSession, principal: Principal, keyring: Keyring) -> KeyringState:
    """Every KEK of the keyring (and any the database still names), newest first."""
    _require_admin(principal)
    tables = [
        await _counts(session, col(Version.kek_id), col(Version.wrapped_dek)),
        await _counts(session, col(HeldVersion.kek_id), col(HeldVersion.wrapped_dek)),
        await _counts(session, col(Upload.kek_id), col(Upload.wrapped_dek)),
        await _counts(session, col(Thumbnail.kek_id), col(Thumbnail.wrapped_dek)),
        await _counts(session, col(TotpCredential.kek_id), col(TotpCredential.wrapped_key)),
    ]
    named = set(keyring.key_ids).union(*tables)
    return KeyringState(
        [
            KekUse(k, k == keyring.active_id, *(table.get(k, 0) for table in tables))
            for k in sorted(named, reverse=True)
        ]
    )


async def rotate(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, keyring: Keyring
) -> str:
    """Add a new active KEK; the old ones stay to open the data keys they wrap."""
    _require_admin(principal)
    new_id = keyring.rotate()
    await audit.record(session, context, AuditAction.KEYS_ROTATED, details={"kek_id": new_id})
    return new_id


async def rewrap(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    context: audit.AuditContext,
    keyring: Keyring,
) -> int:
    """Re-wrap every data key onto the active KEK, in batches (each audited); returns how
    many. The request is recorded under the admin who made it before the work starts."""
    _require_admin(principal)
    async with transaction(sessions) as session:
        await audit.record(
            session,
            context,
            AuditAction.KEYS_REWRAP_REQUESTED,
            details={"kek_id": keyring.active_id},
        )
    return await maintenance.rewrap_all(sessions, keyring)
