"""Files sent for a document request's items: by a resumable upload named after the item, or
by pointing at a document already in the client's folders.

A resumable upload is admitted against its item before any byte is accepted
(`upload_folder`), and attached to the item in the transaction that commits its version
(`attach_upload`), on whichever process finishes it. An upload held in quarantine carries its
item in the held version's details and is submitted, for its uploader, in the transaction
that publishes it once its scan passes or staff release it (`submit_released`): the client
sees it waiting for the scan meanwhile. Every way ends in `document_requests.submit_item`,
so each is audited as `request.submitted`.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit, document_requests
from vault.accounts.users import principal_for
from vault.document_requests import RequestView
from vault.errors import ConflictError, NotFoundError
from vault.models import Document, User
from vault.policy import Permission, Principal, allows, require
from vault.request_tables import DocumentRequest, ItemStatus, RequestItem

if TYPE_CHECKING:
    from vault.quarantine import Committed

logger = logging.getLogger(__name__)
# The key naming the item in an upload's audit details, and in a held version's details.
ITEM_DETAIL = "request_item_id"


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
    return await _submit(
        session, principal, context, item_id, committed.document_id, committed.version
    )


async def _submit(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    item_id: uuid.UUID,
    document_id: uuid.UUID,
    version: int,
) -> bool:
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
        document_id=document_id,
        version=version,
    )
    return True


async def submit_released(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    details: str,
    uploaded_by: uuid.UUID | None,
    document_id: uuid.UUID,
    version: int,
) -> bool:
    """Submit a version just published from quarantine for the item its upload named (in
    `details`, the held version's JSON), as its uploader would have when it finished; the
    uploader's permissions apply as they are now. False when it named none, or may not be
    submitted any more (the file stays in the folder either way)."""
    raw = json.loads(details).get(ITEM_DETAIL)
    if not isinstance(raw, str) or uploaded_by is None:
        return False
    user = await session.get(User, uploaded_by)
    if user is None or not user.is_active:
        return False
    principal = await principal_for(session, user)
    return await _submit(session, principal, context, uuid.UUID(raw), document_id, version)


async def waiting_items(
    session: AsyncSession, folder_id: uuid.UUID, item_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """The items with an upload waiting in quarantine for its scan (or staff's word)."""
    # Imported here: quarantine calls this module when it publishes.
    from vault.quarantine_tables import HeldVersion

    wanted = {str(i) for i in item_ids}
    if not wanted:
        return set()
    rows = await session.execute(
        select(HeldVersion.details).where(
            HeldVersion.folder_id == folder_id,
            col(HeldVersion.published_version).is_(None),
            col(HeldVersion.deleted_at).is_(None),
            col(HeldVersion.details).contains(ITEM_DETAIL),
        )
    )
    found: set[uuid.UUID] = set()
    for text in rows.scalars():
        raw = json.loads(text).get(ITEM_DETAIL)
        if raw in wanted:
            found.add(uuid.UUID(raw))
    return found


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
