"""Legal holds: while a hold on a client or a folder stands, nothing under it is deleted.

A hold suspends every deletion path: moving a document to the trash, retention, the trash
purge and `clientvault gc` (which keeps even unreferenced objects of a client under any
hold). Placing and releasing a hold each need a reason and are audited; released holds stay
on record. Only administrators place or release holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, HeldError, InvalidHoldError, NotFoundError
from vault.folders import get_client
from vault.models import Folder
from vault.policy import Principal, require_admin
from vault.records import LegalHold, lock_client

MAX_REASON = 2000


def clean_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise InvalidHoldError("a legal hold needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidHoldError(f"the reason is longer than {MAX_REASON} characters")
    return text


async def folder_parents(
    session: AsyncSession, client_id: uuid.UUID
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Every folder of the client and its parent, in one query."""
    rows = await session.execute(
        select(Folder.id, Folder.parent_id).where(Folder.client_id == client_id)
    )
    return {row[0]: row[1] for row in rows.all()}


def lineage(parents: Mapping[uuid.UUID, uuid.UUID | None], folder_id: uuid.UUID) -> list[uuid.UUID]:
    """The folder and its ancestors, nearest first (finite even if rows formed a cycle)."""
    chain: list[uuid.UUID] = []
    current: uuid.UUID | None = folder_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


@dataclass(frozen=True, slots=True)
class Holds:
    """The active holds of one client, able to say whether a folder is under one."""

    client_id: uuid.UUID
    active: tuple[LegalHold, ...]
    parents: Mapping[uuid.UUID, uuid.UUID | None]

    @property
    def any(self) -> bool:
        return bool(self.active)

    def covering(self, folder_id: uuid.UUID | None) -> LegalHold | None:
        """The hold that covers `folder_id` (None: the client as a whole), if any."""
        chain = set() if folder_id is None else set(lineage(self.parents, folder_id))
        for hold in self.active:
            if hold.folder_id is None or hold.folder_id in chain:
                return hold
        return None


async def holds_of(session: AsyncSession, client_id: uuid.UUID) -> Holds:
    rows = await session.execute(
        select(LegalHold)
        .where(LegalHold.client_id == client_id, col(LegalHold.released_at).is_(None))
        .order_by(col(LegalHold.placed_at))
    )
    active = tuple(rows.scalars().all())
    parents = await folder_parents(session, client_id) if active else {}
    return Holds(client_id, active, parents)


async def held_client_ids(session: AsyncSession) -> set[uuid.UUID]:
    """Clients with any hold standing, on the whole client or on one of its folders."""
    rows = await session.execute(
        select(LegalHold.client_id).where(col(LegalHold.released_at).is_(None)).distinct()
    )
    return set(rows.scalars().all())


async def refuse_if_held(
    session: AsyncSession, client_id: uuid.UUID, folder_id: uuid.UUID | None
) -> None:
    """Raise `HeldError` if a hold covers the folder (or the client, for None); the client
    stays locked until the caller's transaction ends, so no hold can slip in before it."""
    await lock_client(session, client_id)
    hold = (await holds_of(session, client_id)).covering(folder_id)
    if hold is not None:
        raise HeldError("a legal hold is in place here: nothing under it may be deleted")


async def list_holds(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> list[LegalHold]:
    """Every hold of the client, standing and released, newest first."""
    await get_client(session, principal, client_id)
    require_admin(principal, "see legal holds")
    rows = await session.execute(
        select(LegalHold)
        .where(LegalHold.client_id == client_id)
        .order_by(col(LegalHold.placed_at).desc())
    )
    return list(rows.scalars().all())


async def place_hold(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    *,
    folder_id: uuid.UUID | None,
    reason: str,
) -> LegalHold:
    """Put the client, or one of its folders and everything under it, on hold.

    Raises:
        NotFoundError: no such client (or folder of it) for this caller.
        PermissionDeniedError: the caller is not an administrator.
        InvalidHoldError: the reason is empty or too long.
    """
    await get_client(session, principal, client_id)
    require_admin(principal, "place legal holds")
    await lock_client(session, client_id)
    if folder_id is not None:
        folder = await session.get(Folder, folder_id)
        if folder is None or folder.client_id != client_id:
            raise NotFoundError("folder not found")
    hold = LegalHold(
        client_id=client_id,
        folder_id=folder_id,
        reason=clean_reason(reason),
        placed_by=principal.user_ref,
        placed_at=datetime.now(UTC),
    )
    session.add(hold)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.HOLD_PLACED,
        client_id=client_id,
        target_type="hold",
        target_id=hold.id,
        details={
            "folder_id": str(folder_id) if folder_id else None,
            "reason": hold.reason,
        },
    )
    return hold


async def release_hold(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    hold_id: uuid.UUID,
    *,
    reason: str,
) -> LegalHold:
    """Release a standing hold; it stays on record with who released it, when and why.

    Raises:
        NotFoundError: no such hold for this caller.
        PermissionDeniedError: the caller is not an administrator.
        InvalidHoldError: the reason is empty or too long.
        ConflictError: the hold was released already.
    """
    hold = await session.get(LegalHold, hold_id, with_for_update=True)
    if hold is None:
        raise NotFoundError("hold not found")
    await get_client(session, principal, hold.client_id)
    require_admin(principal, "release legal holds")
    text = clean_reason(reason)
    if hold.released_at is not None:
        raise ConflictError("this hold was released already")
    hold.released_at = datetime.now(UTC)
    hold.released_by = principal.user_ref
    hold.release_reason = text
    session.add(hold)
    await audit.record(
        session,
        context,
        AuditAction.HOLD_RELEASED,
        client_id=hold.client_id,
        target_type="hold",
        target_id=hold.id,
        details={
            "folder_id": str(hold.folder_id) if hold.folder_id else None,
            "reason": text,
        },
    )
    return hold
