"""Document requests: staff ask a client for a checklist of documents by a due date.

Each item goes requested → submitted → accepted or rejected (with a reason; a rejected item
may be submitted again). A request closes by hand, or by itself once every item is accepted;
a recurring one then opens its next occurrence. Every change is audited in its transaction
(`request.opened`, `request.submitted`, `request.answered`, `request.closed`), which is also
how the notifier hears of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit, request_documents
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, InvalidRequestError, NotFoundError
from vault.models import Document, Folder, Role, Version
from vault.policy import Permission, Principal, can_see_client, require
from vault.request_documents import RequestView as RequestView
from vault.request_documents import view_of
from vault.request_tables import (
    MAX_ITEMS,
    MAX_MESSAGE,
    MAX_TEXT,
    DocumentRequest,
    ItemStatus,
    Recurrence,
    RequestItem,
    next_due,
)


def _text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    value = " ".join(value.split())
    if not value:
        raise InvalidRequestError(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidRequestError(f"{what} is longer than {limit} characters")
    return value


def _details(request: DocumentRequest, **more: object) -> dict[str, object]:
    # `name` and `folder_id` are what the notifier shows in its emails.
    return {
        "request_id": str(request.id),
        "title": request.title,
        "folder_id": str(request.folder_id),
        "due_date": request.due_date.isoformat(),
        **more,
    }


async def _items(session: AsyncSession, request_id: uuid.UUID) -> Sequence[RequestItem]:
    return (
        (
            await session.execute(
                select(RequestItem)
                .where(RequestItem.request_id == request_id)
                .order_by(col(RequestItem.position))
            )
        )
        .scalars()
        .all()
    )


async def _open(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    folder_id: uuid.UUID,
    title: str,
    message: str,
    due_date: date,
    recurrence: Recurrence,
    anchor_day: int,
    names: Sequence[str],
    created_by: uuid.UUID | None,
    previous_id: uuid.UUID | None = None,
) -> RequestView:
    request = DocumentRequest(
        client_id=client_id,
        folder_id=folder_id,
        title=title,
        message=message,
        due_date=due_date,
        recurrence=recurrence,
        anchor_day=anchor_day,
        previous_id=previous_id,
        created_by=created_by,
    )
    session.add(request)
    await session.flush()
    items = [
        RequestItem(request_id=request.id, position=i, name=n, status=ItemStatus.REQUESTED)
        for i, n in enumerate(names)
    ]
    session.add_all(items)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.REQUEST_OPENED,
        client_id=client_id,
        target_type="request",
        target_id=request.id,
        details=_details(
            request,
            name=title,
            message=message,
            recurrence=recurrence.value,
            items=list(names),
        ),
    )
    return await view_of(session, request, items)


def _require_client(principal: Principal, client_id: uuid.UUID) -> None:
    # Worded like the API's answer to a malformed client id, so neither tells anything apart.
    if not can_see_client(principal, client_id):
        raise NotFoundError("client not found")


async def create_request(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    folder_id: uuid.UUID,
    title: str,
    due_date: date,
    items: Sequence[str],
    message: str = "",
    recurrence: Recurrence = Recurrence.NONE,
) -> RequestView:
    _require_client(principal, client_id)
    require(principal, Permission.REQUEST_DOCUMENTS, client_id)
    folder = await session.get(Folder, folder_id)
    # Another client's folder is as unknown as a missing one.
    if folder is None or folder.client_id != client_id:
        raise NotFoundError("folder not found")
    names = [_text(n, "an item name") for n in items]
    if not names:
        raise InvalidRequestError("a request needs at least one item")
    if len(names) > MAX_ITEMS:
        raise InvalidRequestError(f"a request has at most {MAX_ITEMS} items")
    if len(message) > MAX_MESSAGE:
        raise InvalidRequestError(f"the message is longer than {MAX_MESSAGE} characters")
    return await _open(
        session,
        context,
        client_id=client_id,
        folder_id=folder.id,
        title=_text(title, "the title"),
        message=message.strip(),
        due_date=due_date,
        recurrence=recurrence,
        anchor_day=due_date.day,
        names=names,
        created_by=principal.user_ref,
    )


async def _visible(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, lock: bool = False
) -> DocumentRequest:
    query = select(DocumentRequest).where(DocumentRequest.id == request_id)
    if lock:
        # Changes to one request take turns, so "all accepted" is decided once.
        query = query.with_for_update()
    request = (await session.execute(query)).scalar_one_or_none()
    if request is None or not can_see_client(principal, request.client_id):
        raise NotFoundError("request not found")
    require(principal, Permission.VIEW, request.client_id)
    return request


async def get_request(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    context: audit.AuditContext | None = None,
) -> RequestView:
    """One request the caller may see; shown to someone (audited) when `context` is given."""
    request = await _visible(session, principal, request_id)
    if context is not None:
        await audit.record(
            session, context, AuditAction.REQUEST_VIEWED, client_id=request.client_id,
            target_type="request", target_id=request.id, details=_details(request),
        )  # fmt: skip
    return await view_of(session, request, await _items(session, request.id))


async def _listed(
    session: AsyncSession, context: audit.AuditContext | None, found: int, client: object = None
) -> None:
    if context is not None:
        details = {"requests": found}
        await audit.record(
            session, context, AuditAction.REQUEST_LISTED, client_id=client, details=details
        )


async def _views(session: AsyncSession, requests: Sequence[DocumentRequest]) -> list[RequestView]:
    ids = [r.id for r in requests]
    by_request: dict[uuid.UUID, list[RequestItem]] = {i: [] for i in ids}
    if ids:
        rows = (
            (
                await session.execute(
                    select(RequestItem)
                    .where(col(RequestItem.request_id).in_(ids))
                    .order_by(col(RequestItem.position))
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            by_request[row.request_id].append(row)
    documents = await request_documents.for_items(
        session, [i.id for items in by_request.values() for i in items]
    )
    return [
        RequestView(r, by_request[r.id], {i.id: documents[i.id] for i in by_request[r.id]})
        for r in requests
    ]


async def list_for_client(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    *,
    context: audit.AuditContext | None = None,
) -> list[RequestView]:
    """A client's requests, open ones first (earliest due first), then closed ones; shown to
    someone (audited) when `context` is given."""
    _require_client(principal, client_id)
    require(principal, Permission.VIEW, client_id)
    rows = (
        (
            await session.execute(
                select(DocumentRequest)
                .where(DocumentRequest.client_id == client_id)
                .order_by(
                    col(DocumentRequest.closed_at).is_not(None),
                    col(DocumentRequest.due_date),
                    col(DocumentRequest.created_at),
                )
            )
        )
        .scalars()
        .all()
    )
    await _listed(session, context, len(rows), client_id)
    return await _views(session, rows)


async def list_open(
    session: AsyncSession, principal: Principal, *, context: audit.AuditContext | None = None
) -> list[RequestView]:
    """Open requests of every client the caller may see; the earliest due (so every overdue
    one) first. Shown to someone (audited) when `context` is given."""
    query = select(DocumentRequest).where(col(DocumentRequest.closed_at).is_(None))
    if principal.role is not Role.ADMIN:
        visible = [c for c in principal.client_ids if can_see_client(principal, c)]
        query = query.where(col(DocumentRequest.client_id).in_(visible))
    rows = (
        (
            await session.execute(
                query.order_by(col(DocumentRequest.due_date), col(DocumentRequest.created_at))
            )
        )
        .scalars()
        .all()
    )
    await _listed(session, context, len(rows))
    return await _views(session, rows)


async def _item(session: AsyncSession, request: DocumentRequest, item_id: uuid.UUID) -> RequestItem:
    item = await session.get(RequestItem, item_id)
    if item is None or item.request_id != request.id:
        raise NotFoundError("item not found")
    return item


def _require_open(request: DocumentRequest) -> None:
    if request.closed_at is not None:
        raise ConflictError("the request is closed")


async def submit_item(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    request_id: uuid.UUID,
    item_id: uuid.UUID,
    document_id: uuid.UUID,
    version: int | None = None,
) -> RequestView:
    """Link an uploaded document (its current version unless `version`) to an item."""
    request = await _visible(session, principal, request_id, lock=True)
    item = await _item(session, request, item_id)
    require(principal, Permission.UPLOAD, request.client_id)
    document = await session.get(Document, document_id)
    # A document of another client, or in the trash, is as unknown as a missing one.
    if (
        document is None
        or document.deleted_at is not None
        or document.client_id != request.client_id
    ):
        raise NotFoundError("document not found")
    number = document.current_version if version is None else version
    found = (
        await session.execute(
            select(Version.id).where(Version.document_id == document.id, Version.number == number)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFoundError("version not found")
    _require_open(request)
    if item.status == ItemStatus.ACCEPTED:
        raise ConflictError("the item is already accepted")
    now = datetime.now(UTC)
    await request_documents.add(
        session, item, document_id=document.id, version=number, by=principal.user_ref, at=now
    )
    # The latest submission, as the item showed it before it took several documents.
    item.status = ItemStatus.SUBMITTED
    item.document_id = document.id
    item.version = number
    item.submitted_by = principal.user_ref
    item.submitted_at = now
    item.answered_by = item.answered_at = item.reason = None
    session.add(item)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.REQUEST_SUBMITTED,
        client_id=request.client_id,
        target_type="request_item",
        target_id=item.id,
        document_id=document.id,
        details=_details(
            request,
            name=item.name,
            item_id=str(item.id),
            status=ItemStatus.SUBMITTED.value,
            version=number,
        ),
    )
    return await view_of(session, request, await _items(session, request.id))


async def answer_item(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    request_id: uuid.UUID,
    item_id: uuid.UUID,
    status: ItemStatus,
    reason: str | None = None,
) -> RequestView:
    """Accept or reject a submitted item; accepting the last one completes the request."""
    request = await _visible(session, principal, request_id, lock=True)
    item = await _item(session, request, item_id)
    require(principal, Permission.REQUEST_DOCUMENTS, request.client_id)
    if status not in (ItemStatus.ACCEPTED, ItemStatus.REJECTED):
        raise InvalidRequestError("the answer is accepted or rejected")
    text = (reason or "").strip()
    if status == ItemStatus.REJECTED and not text:
        raise InvalidRequestError("a rejection needs a reason")
    if len(text) > MAX_MESSAGE:
        raise InvalidRequestError(f"the reason is longer than {MAX_MESSAGE} characters")
    _require_open(request)
    if item.status != ItemStatus.SUBMITTED:
        raise ConflictError(f"the item is {item.status}, not submitted")
    item.status = status
    item.answered_by = principal.user_ref
    item.answered_at = datetime.now(UTC)
    item.reason = text or None
    session.add(item)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.REQUEST_ANSWERED,
        client_id=request.client_id,
        target_type="request_item",
        target_id=item.id,
        document_id=item.document_id,
        details=_details(
            request,
            name=item.name,
            item_id=str(item.id),
            status=status.value,
            reason=item.reason,
        ),
    )
    items = await _items(session, request.id)
    if all(i.status == ItemStatus.ACCEPTED for i in items):
        await _close(session, principal, context, request, items, complete=True)
    return await view_of(session, request, items)


async def close_request(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    request_id: uuid.UUID,
) -> RequestView:
    request = await _visible(session, principal, request_id, lock=True)
    require(principal, Permission.REQUEST_DOCUMENTS, request.client_id)
    _require_open(request)
    items = await _items(session, request.id)
    await _close(session, principal, context, request, items, complete=False)
    return await view_of(session, request, items)


async def _close(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    request: DocumentRequest,
    items: Sequence[RequestItem],
    *,
    complete: bool,
) -> RequestView | None:
    """Close `request` and open its next occurrence, if it recurs; returns that one."""
    request.closed_at = datetime.now(UTC)
    request.closed_by = principal.user_ref
    session.add(request)
    await session.flush()
    due = next_due(request)
    await audit.record(
        session,
        context,
        AuditAction.REQUEST_CLOSED,
        client_id=request.client_id,
        target_type="request",
        target_id=request.id,
        details=_details(
            request,
            name=request.title,
            complete=complete,
            next_due_date=due.isoformat() if due else None,
        ),
    )
    if due is None:
        return None
    return await _open(
        session,
        context,
        client_id=request.client_id,
        folder_id=request.folder_id,
        title=request.title,
        message=request.message,
        due_date=due,
        recurrence=Recurrence(request.recurrence),
        anchor_day=request.anchor_day,
        names=[i.name for i in items],
        created_by=principal.user_ref,
        previous_id=request.id,
    )


async def record_reminder(session: AsyncSession, request: DocumentRequest, stage: str) -> None:
    """Audit that the client is to be reminded of `request` (`stage`: due soon or overdue);
    the notifier sends the email from the event."""
    await audit.record(
        session,
        audit.SYSTEM,
        AuditAction.REQUEST_REMINDER,
        client_id=request.client_id,
        target_type="request",
        target_id=request.id,
        details=_details(request, name=request.title, stage=stage),
    )
