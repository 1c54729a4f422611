"""Changes staff make to an open document request: its wording and checklist, its due date,
and a reminder sent by hand.

Each is audited in its transaction (`request.edited`, `request.due_changed`,
`request.reminder`); a reminder by hand is the same `request.reminder` event the scheduled
ones are, so the notifier emails the client's members from it exactly as it does those.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from vault import audit
from vault.audit.actions import AuditAction
from vault.document_requests import (
    RequestView,
    _details,
    _items,
    _require_open,
    _text,
    _visible,
)
from vault.errors import ConflictError, InvalidRequestError, NotFoundError
from vault.policy import Permission, Principal, require
from vault.request_documents import view_of
from vault.request_tables import (
    MAX_ITEMS,
    MAX_MESSAGE,
    REMIND_AGAIN_AFTER,
    DocumentRequest,
    ItemStatus,
    RequestItem,
)


def removable(item: RequestItem) -> bool:
    """Only an item the client has not answered yet may go: nothing attached, nothing judged."""
    return item.status == ItemStatus.REQUESTED and item.document_id is None


async def _staff_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> DocumentRequest:
    request = await _visible(session, principal, request_id, lock=True)
    require(principal, Permission.REQUEST_DOCUMENTS, request.client_id)
    _require_open(request)
    return request


def _plan(
    current: Sequence[RequestItem],
    *,
    add: Sequence[str],
    rename: Mapping[uuid.UUID, str],
    remove: Sequence[uuid.UUID],
) -> tuple[list[RequestItem], list[str], dict[uuid.UUID, str]]:
    """The items to drop, the names to add and the renames that change a name."""
    by_id = {i.id: i for i in current}
    if any(i not in by_id for i in (*rename, *remove)):
        # Another request's item, or one already removed: as unknown as a missing one.
        raise NotFoundError("item not found")
    dropped = [by_id[i] for i in dict.fromkeys(remove)]
    if any(not removable(i) for i in dropped):
        raise ConflictError("an item the client has answered cannot be removed")
    names = [_text(n, "an item name") for n in add if n.strip()]
    renames = {i: _text(n, "an item name") for i, n in rename.items() if i not in remove}
    renames = {i: n for i, n in renames.items() if n != by_id[i].name}
    left = len(current) - len(dropped) + len(names)
    if left < 1:
        raise InvalidRequestError("a request needs at least one item")
    if left > MAX_ITEMS:
        raise InvalidRequestError(f"a request has at most {MAX_ITEMS} items")
    return dropped, names, renames


async def edit_request(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    request_id: uuid.UUID,
    *,
    title: str | None = None,
    message: str | None = None,
    add: Sequence[str] = (),
    rename: Mapping[uuid.UUID, str] | None = None,
    remove: Sequence[uuid.UUID] = (),
) -> RequestView:
    """Change an open request's title, message or checklist (staff, admin): `add` items by
    name, `rename` items by id, `remove` items by id while nothing is attached to them. An
    unchanged request records nothing.

    Raises:
        NotFoundError: an item id is not one of this request's.
        ConflictError: an item to remove has a file or an answer.
    """
    request = await _staff_request(session, principal, request_id)
    current = await _items(session, request.id)
    new_title = request.title if title is None else _text(title, "the title")
    new_message = request.message if message is None else message.strip()
    if len(new_message) > MAX_MESSAGE:
        raise InvalidRequestError(f"the message is longer than {MAX_MESSAGE} characters")
    dropped, added, renames = _plan(current, add=add, rename=rename or {}, remove=remove)
    renamed = [[i.name, renames[i.id]] for i in current if i.id in renames]
    for item in dropped:
        await session.delete(item)
    kept = [i for i in current if i not in dropped]
    for position, item in enumerate(kept):
        item.name = renames.get(item.id, item.name)
        item.position = position
        session.add(item)
    session.add_all(
        RequestItem(request_id=request.id, position=len(kept) + n, name=name,
                    status=ItemStatus.REQUESTED)
        for n, name in enumerate(added)
    )  # fmt: skip
    fields: list[str] = []
    if new_title != request.title:
        fields.append("title")
    if new_message != request.message:
        fields.append("message")
    if fields or added or renamed or dropped:
        request.title, request.message = new_title, new_message
        session.add(request)
        await session.flush()
        await audit.record(
            session, context, AuditAction.REQUEST_EDITED, client_id=request.client_id,
            target_type="request", target_id=request.id,
            details=_details(
                request, name=request.title, fields=fields, added=added, renamed=renamed,
                removed=[i.name for i in dropped],
                **({"message": request.message} if "message" in fields else {}),
            ),
        )  # fmt: skip
    return await view_of(session, request, await _items(session, request.id))


async def change_due_date(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    request_id: uuid.UUID,
    *,
    due_date: date,
    today: date | None = None,
) -> RequestView:
    """Move an open request's due date, to `today` (the caller's day) or later; its reminders
    start over for the new date."""
    request = await _staff_request(session, principal, request_id)
    if due_date < (today or datetime.now(UTC).date()):
        raise InvalidRequestError("the due date has passed")
    previous = request.due_date
    if due_date != previous:
        request.due_date = due_date
        request.reminded_due_soon_at = request.reminded_overdue_at = None
        session.add(request)
        await session.flush()
        await audit.record(
            session, context, AuditAction.REQUEST_DUE_CHANGED, client_id=request.client_id,
            target_type="request", target_id=request.id,
            details=_details(request, name=request.title, previous_due_date=previous.isoformat()),
        )  # fmt: skip
    return await view_of(session, request, await _items(session, request.id))


class RemindedRecentlyError(ConflictError):
    """A reminder by hand went out moments ago: this one would be the same email again."""


async def remind_now(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    request_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> RequestView:
    """Remind the client's members of an open request at once (staff, admin).

    Raises:
        ConflictError: nothing is waiting from the client.
        RemindedRecentlyError: a reminder went out in the last `REMIND_AGAIN_AFTER` seconds.
    """
    now = now or datetime.now(UTC)
    request = await _staff_request(session, principal, request_id)
    items = await _items(session, request.id)
    if not any(i.status in (ItemStatus.REQUESTED, ItemStatus.REJECTED) for i in items):
        raise ConflictError("nothing is waiting from the client")
    # A conditional UPDATE is the claim: of two clicks (or two nodes) exactly one matches,
    # whatever the database's locking, so one email goes out.
    result = await session.execute(
        update(DocumentRequest)
        .where(
            col(DocumentRequest.id) == request.id,
            or_(
                col(DocumentRequest.reminded_at).is_(None),
                col(DocumentRequest.reminded_at) <= now - timedelta(seconds=REMIND_AGAIN_AFTER),
            ),
        )
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        raise RemindedRecentlyError("a reminder was sent moments ago")
    await session.refresh(request)
    stage = "overdue" if request.due_date < now.date() else "due_soon"
    await audit.record(
        session, context, AuditAction.REQUEST_REMINDER, client_id=request.client_id,
        target_type="request", target_id=request.id,
        details=_details(request, name=request.title, stage=stage, manual=True),
    )  # fmt: skip
    return await view_of(session, request, items)
