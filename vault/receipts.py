"""Delivery receipts: who has downloaded which version of a document in full.

A receipt is written once per user and version, when a whole-body download (not a range,
not a HEAD) has streamed to its end, in a short transaction of its own after the bytes
went out; the completion is audited every time as `document.download_completed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.db import insert_missing
from vault.documents import may_manage, versions
from vault.errors import PermissionDeniedError
from vault.lookalikes import shown_name
from vault.models import ClientAccess, Document, Role, User, VersionReceipt, utcnow
from vault.policy import Principal


@dataclass(frozen=True, slots=True)
class Completed:
    """One finished whole-body download, as the web layer reports it."""

    client_id: uuid.UUID
    document_id: uuid.UUID
    version_id: uuid.UUID
    number: int
    user_id: uuid.UUID | None
    via: str = "content"


async def record_completed(
    session: AsyncSession, context: audit.AuditContext, completed: Completed
) -> bool:
    """Audit the completion and keep the first receipt; True if this one was the first."""
    first = False
    if completed.user_id is not None:
        # One statement, whether the receipt is new or not, and no error where a parallel
        # download of the same version (on another node) recorded it first.
        receipt = {
            "version_id": completed.version_id,
            "user_id": completed.user_id,
            "completed_at": utcnow(),
        }
        inserted = await session.execute(insert_missing(session, VersionReceipt, receipt))
        first = bool(cast(CursorResult[Any], inserted).rowcount)
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_DOWNLOAD_COMPLETED,
        client_id=completed.client_id,
        target_type="document",
        target_id=completed.document_id,
        document_id=completed.document_id,
        details={"version": completed.number, "first": first, "via": completed.via},
    )
    return first


@dataclass(frozen=True, slots=True)
class Member:
    id: uuid.UUID
    email: str
    display_name: str

    @property
    def label(self) -> str:
        # Members are client users: their address goes beside their chosen name (item 11).
        return shown_name(self.display_name, self.email, Role.CLIENT)


@dataclass(frozen=True, slots=True)
class VersionReceipts:
    number: int
    received: list[tuple[Member, datetime]]
    waiting: list[Member]


async def client_members(session: AsyncSession, client_id: uuid.UUID) -> list[Member]:
    """The active client users of a client (not its staff): the ones a delivery is for."""
    rows = await session.execute(
        select(User)
        .join(ClientAccess, col(ClientAccess.user_id) == col(User.id))
        .where(
            col(ClientAccess.client_id) == client_id,
            col(User.role) == Role.CLIENT.value,
            col(User.is_active).is_(True),
        )
        .order_by(col(User.email))
    )
    return [Member(u.id, u.email, u.display_name) for u in rows.scalars().all()]


async def receipts(
    session: AsyncSession, principal: Principal, document: Document
) -> list[VersionReceipts]:
    """For each version, newest first, which client members downloaded it in full and when,
    and who has not yet (its uploader left out); for those who look after the client (staff,
    admin).

    `document` comes from `documents.get_document`, which already hid other clients' ones.
    """
    if not may_manage(principal, document.client_id):
        raise PermissionDeniedError("only staff see delivery receipts")
    members = await client_members(session, document.client_id)
    by_id = {m.id: m for m in members}
    all_versions = list(await versions(session, document.id))
    ids = [v.id for v in all_versions]
    rows = await session.execute(
        select(VersionReceipt).where(col(VersionReceipt.version_id).in_(ids))
    )
    got: dict[uuid.UUID, dict[uuid.UUID, datetime]] = {}
    for receipt in rows.scalars().all():
        got.setdefault(receipt.version_id, {})[receipt.user_id] = receipt.completed_at
    result: list[VersionReceipts] = []
    for version in reversed(all_versions):
        done = got.get(version.id, {})
        # The member who uploaded a version has it already: it is not delivered to them.
        uploader = version.uploaded_by
        received = sorted(
            ((by_id[uid], at) for uid, at in done.items() if uid in by_id and uid != uploader),
            key=lambda pair: pair[1],
        )
        waiting = [m for m in members if m.id not in done and m.id != uploader]
        result.append(VersionReceipts(version.number, received, waiting))
    return result


def summary(found: Sequence[VersionReceipts]) -> dict[int, VersionReceipts]:
    return {r.number: r for r in found}


async def record_viewed(
    session: AsyncSession, context: audit.AuditContext, document: Document
) -> None:
    """Audit that someone was shown who received the document's versions."""
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_RECEIPTS_VIEWED,
        client_id=document.client_id,
        target_type="document",
        target_id=document.id,
        document_id=document.id,
    )
