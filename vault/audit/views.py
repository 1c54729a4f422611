"""What the auditor's pages read: searches, a document's history, a person's timeline and
the access report. Auditors and admins only; to anyone else the pages do not exist
(`NotFoundError`, so a 404, as for any resource the caller may not see). Every read is
itself an `audit.viewed` event, a report download an `audit.report_downloaded` one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.audit import chain as audit
from vault.audit import labels as audit_labels
from vault.audit import query as aq
from vault.audit.actions import AuditAction
from vault.audit.chain import AuditContext
from vault.documents import may_manage
from vault.errors import NotFoundError
from vault.models import AuditEvent, Client, Document, User
from vault.policy import Permission, Principal, allows

PAGE_SIZE = 50
CHOICES = 20  # matches offered when a typed name or email names several people or files
REPORT_LIMIT = 100_000  # rows of one report; past it, the page asks for a shorter range


@dataclass(frozen=True, slots=True)
class Shown:
    """An event and the labels it is shown with (its own, or today's for format 1)."""

    event: AuditEvent
    labels: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[Shown]
    next_cursor: int | None


def require_auditor(principal: Principal) -> None:
    if not allows(principal, Permission.READ_AUDIT, None):
        raise NotFoundError("not found")


async def shown(session: AsyncSession, events: Sequence[AuditEvent]) -> list[Shown]:
    joined = await audit_labels.current(session, events)
    return [Shown(e, audit_labels.shown(e, joined)) for e in events]


def described(filters: aq.AuditFilter) -> dict[str, str]:
    return {name: value for name in filters.__slots__ if (value := getattr(filters, name))}


async def events(
    session: AsyncSession,
    principal: Principal,
    context: AuditContext,
    filters: aq.AuditFilter,
    *,
    view: str,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> EventPage:
    """One page of matching events, newest first; `view` names the page in the audit event."""
    require_auditor(principal)
    return await _page(session, context, filters, view=view, before=before, limit=limit)


async def document_events(
    session: AsyncSession,
    principal: Principal,
    context: AuditContext,
    document_id: uuid.UUID,
    *,
    before: int | None = None,
) -> tuple[Document, EventPage]:
    """A document and one page of its history (see `document` for who may read it)."""
    found = await document(session, principal, document_id)
    filters = aq.AuditFilter(document_id=str(found.id))
    return found, await _page(session, context, filters, view="document", before=before)


async def _page(
    session: AsyncSession,
    context: AuditContext,
    filters: aq.AuditFilter,
    *,
    view: str,
    before: int | None,
    limit: int = PAGE_SIZE,
) -> EventPage:
    rows, cursor = await aq.page(session, filters, limit=limit, before=before)
    await audit.record(
        session,
        context,
        AuditAction.AUDIT_VIEWED,
        details={"view": view, "filters": described(filters)},
    )
    return EventPage(await shown(session, rows), cursor)


async def report_form(
    session: AsyncSession, principal: Principal, context: AuditContext
) -> list[Client]:
    """The clients a report can be made for; opening the form is a read of the log's pages."""
    found = await clients(session, principal)
    await audit.record(session, context, AuditAction.AUDIT_VIEWED, details={"view": "report"})
    return found


async def clients(session: AsyncSession, principal: Principal) -> list[Client]:
    require_auditor(principal)
    rows = await session.execute(select(Client).order_by(col(Client.name)))
    return list(rows.scalars())


def _like(text: str) -> str:
    """A LIKE pattern for text containing `text`, its own `%` and `_` taken literally."""
    needle = text.strip().lower()
    for char in ("\\", "%", "_"):
        needle = needle.replace(char, "\\" + char)
    return f"%{needle}%"


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


async def find_people(session: AsyncSession, principal: Principal, text: str) -> list[User]:
    """People an auditor's typed id, email or part of a name may mean."""
    require_auditor(principal)
    if (user_id := _uuid(text)) is not None:
        found = await session.get(User, user_id)
        return [found] if found else []
    needle = text.strip().lower()
    exact = await session.execute(select(User).where(func.lower(User.email) == needle))
    if person := exact.scalars().first():
        return [person]
    pattern = _like(needle)
    rows = await session.execute(
        select(User)
        .where(
            func.lower(User.email).like(pattern, escape="\\")
            | func.lower(User.display_name).like(pattern, escape="\\")
        )
        .order_by(col(User.email))
        .limit(CHOICES)
    )
    return list(rows.scalars())


async def find_documents(
    session: AsyncSession, principal: Principal, text: str, client_id: uuid.UUID | None
) -> list[Document]:
    """Documents (trashed ones too: their history matters) a typed id or name may mean."""
    require_auditor(principal)
    if (document_id := _uuid(text)) is not None:
        found = await session.get(Document, document_id)
        return [found] if found else []
    query = select(Document).where(func.lower(Document.name).like(_like(text), escape="\\"))
    if client_id is not None:
        query = query.where(Document.client_id == client_id)
    rows = await session.execute(query.order_by(col(Document.name)).limit(CHOICES))
    return list(rows.scalars())


async def document(session: AsyncSession, principal: Principal, document_id: uuid.UUID) -> Document:
    """A document whose access history the caller may read: any, for auditors and admins;
    those of the clients they look after, for staff (the document page links it)."""
    found = await session.get(Document, document_id)
    if found is None or not (
        allows(principal, Permission.READ_AUDIT, None) or may_manage(principal, found.client_id)
    ):
        raise NotFoundError("document not found")
    return found


async def person(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    require_auditor(principal)
    found = await session.get(User, user_id)
    if found is None:
        raise NotFoundError("user not found")
    return found


async def client_name(session: AsyncSession, client_id: str | None) -> str | None:
    parsed = _uuid(client_id or "")
    found = await session.get(Client, parsed) if parsed else None
    return found.name if found else None


async def report_downloaded(
    session: AsyncSession,
    principal: Principal,
    context: AuditContext,
    filters: aq.AuditFilter,
    *,
    fmt: str,
) -> None:
    """Records the download of an access report, before any of it is sent."""
    require_auditor(principal)
    await audit.record(
        session,
        context,
        AuditAction.AUDIT_REPORT_DOWNLOADED,
        client_id=filters.client_id,
        target_type="client",
        target_id=filters.client_id,
        details={"format": fmt, "filters": described(filters)},
    )
