"""The documents submitted for a request item: an item may take several files (a statement
in three parts), each listed once with who submitted it and when.

Submitting adds to the item's list; the same document submitted again stays one entry (its
newest version, submitter and time). Staff accept or reject the item as a whole; the first
submission after a rejection starts the list again, since the rejected files are what the
firm asked to have replaced (they stay in the folder, and each submission stays in the
audit log as `request.submitted`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.models import Document
from vault.request_tables import DocumentRequest, ItemDocument, ItemStatus, RequestItem


@dataclass(frozen=True, slots=True)
class Submitted:
    document_id: uuid.UUID
    name: str
    version: int
    submitted_by: uuid.UUID | None
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class RequestView:
    request: DocumentRequest
    items: Sequence[RequestItem]
    # Each item's submitted documents, by item id.
    documents: Mapping[uuid.UUID, Sequence[Submitted]] = field(default_factory=dict)


async def view_of(
    session: AsyncSession, request: DocumentRequest, items: Sequence[RequestItem]
) -> RequestView:
    return RequestView(request, items, await for_items(session, [i.id for i in items]))


async def add(
    session: AsyncSession,
    item: RequestItem,
    *,
    document_id: uuid.UUID,
    version: int,
    by: uuid.UUID | None,
    at: datetime,
) -> None:
    """Add a submission to `item`'s list; call before the item's status changes (a
    rejected item starts a new list). The caller holds the request's lock."""
    if item.status == ItemStatus.REJECTED:
        await session.execute(delete(ItemDocument).where(col(ItemDocument.item_id) == item.id))
    found = (
        await session.execute(
            select(ItemDocument).where(
                ItemDocument.item_id == item.id, ItemDocument.document_id == document_id
            )
        )
    ).scalar_one_or_none()
    if found is None:
        found = ItemDocument(item_id=item.id, document_id=document_id, version=version)
    found.version = version
    found.submitted_by = by
    found.submitted_at = at
    session.add(found)
    await session.flush()


async def for_items(
    session: AsyncSession, item_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Submitted]]:
    """Each item's submitted documents (not those moved to the trash since), oldest
    submission first."""
    ids = list(item_ids)
    found: dict[uuid.UUID, list[Submitted]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(ItemDocument, Document.name)
        .join(Document, col(Document.id) == col(ItemDocument.document_id))
        .where(col(ItemDocument.item_id).in_(ids), col(Document.deleted_at).is_(None))
        .order_by(col(ItemDocument.submitted_at), col(Document.name))
    )
    for link, name in rows.all():
        found[link.item_id].append(
            Submitted(link.document_id, name, link.version, link.submitted_by, link.submitted_at)
        )
    return found


async def forget_document(session: AsyncSession, document_id: uuid.UUID) -> None:
    """Drop a document from every item's list, before the document itself is deleted."""
    await session.execute(delete(ItemDocument).where(col(ItemDocument.document_id) == document_id))
