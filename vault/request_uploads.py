"""Files sent for a document request's items: by a resumable upload named after the item, or
by pointing at a document already in the client's folders.

A resumable upload is admitted against its item before any byte is accepted
(`upload_folder`), and attached to the item in the transaction that commits its version
(`attach_upload`), on whichever process finishes it. Both ways end in
`document_requests.submit_item`, so each is audited as `request.submitted`.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit, document_requests
from vault.document_requests import RequestView
from vault.errors import ConflictError, NotFoundError
from vault.models import Document
from vault.policy import Permission, Principal, allows, require
from vault.quarantine import Committed
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem

logger = logging.getLogger(__name__)


async def _open_item(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID
) -> tuple[DocumentRequest, RequestItem]:
    """The item and its request, if the caller may send a file for it now."""
    item = await session.get(RequestItem, item_id)
    if item is None:
        raise NotFoundError("item not found")
    view = await document_requests.get_request(session, principal, item.request_id)
    request = view.request
    require(principal, Permission.UPLOAD, request.client_id)
    if request.closed_at is not None:
        raise ConflictError("the request is closed")
    if item.status == ItemStatus.ACCEPTED:
        raise ConflictError("the item is already accepted")
    return request, item


async def upload_folder(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID
) -> uuid.UUID:
    """The folder a file for `item_id` goes into (the request's).

    Raises:
        NotFoundError: no such item, or its request is not the caller's to see.
        ConflictError: the request is closed or the item already accepted.
    """
    request, _item = await _open_item(session, principal, item_id)
    return request.folder_id


async def attach_upload(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    item_id: uuid.UUID,
    committed: Committed,
) -> bool:
    """Submit a just-committed upload for its item, in the transaction that commits it.

    The file stays in the folder whatever happens here; it is not submitted (and False is
    returned) when it waits in quarantine, or when the request was closed or the item
    accepted while it was on its way, so that a late answer never undoes a stored upload.
    """
    if committed.held or committed.version is None:
        return False
    try:
        await _open_item(session, principal, item_id)
    except (NotFoundError, ConflictError) as exc:
        logger.info("upload for request item %s kept but not submitted: %s", item_id, exc)
        return False
    item = await session.get(RequestItem, item_id)
    assert item is not None
    await document_requests.submit_item(
        session,
        principal,
        context,
        request_id=item.request_id,
        item_id=item_id,
        document_id=committed.document_id,
        version=committed.version,
    )
    return True


async def attach_existing(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    item_id: uuid.UUID,
    document_id: uuid.UUID,
) -> RequestView:
    """Submit a document already in the client's folders (its current version) for an item.

    Raises:
        NotFoundError: the item, or the document, is not one the caller may use here.
        ConflictError: the request is closed or the item already accepted.
    """
    request, item = await _open_item(session, principal, item_id)
    return await document_requests.submit_item(
        session,
        principal,
        context,
        request_id=request.id,
        item_id=item.id,
        document_id=document_id,
    )


async def attachable_documents(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> list[Document]:
    """The client's documents (not in the trash) that could be attached, by name."""
    if not allows(principal, Permission.UPLOAD, client_id):
        return []
    rows = await session.execute(
        select(Document).where(
            Document.client_id == client_id,
            col(Document.deleted_at).is_(None),
            col(Document.current_version) > 0,
        )
    )
    return sorted(rows.scalars().all(), key=lambda d: d.name.casefold())
