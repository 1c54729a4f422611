"""Request templates: named checklists the firm reuses for any client ("Year-end tax pack").

A template belongs to the firm, not to a client: any staff member or administrator may list,
use, create, change and delete one; clients and auditors do not know they exist (404).
Reads and changes are audited (`request.template_listed`, `…_viewed`, `…_created`,
`…_updated`, `…_deleted`): which checklists a person looked at, and when, is part of what
they did.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from types import EllipsisType

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.document_requests import _text
from vault.errors import ConflictError, InvalidRequestError, NotFoundError
from vault.models import Role
from vault.policy import Principal
from vault.request_tables import (
    MAX_DUE_IN_DAYS,
    MAX_ITEMS,
    MAX_MESSAGE,
    RequestTemplate,
)

__all__ = [
    "create_template",
    "delete_template",
    "due_date_from",
    "get_template",
    "list_templates",
    "update_template",
]


def _require_firm(principal: Principal, *, change: bool = False) -> None:
    # Clients and auditors are told nothing of the firm's templates: the same 404 as a
    # page that does not exist. A read-only token may list and use them, not change them.
    if principal.role not in (Role.STAFF, Role.ADMIN) or (change and principal.read_only):
        raise NotFoundError("template not found")


def _names(items: Sequence[str]) -> list[str]:
    names = [_text(n, "an item name") for n in items if n.strip()]
    if not names:
        raise InvalidRequestError("a template needs at least one item")
    if len(names) > MAX_ITEMS:
        raise InvalidRequestError(f"a template has at most {MAX_ITEMS} items")
    return names


def _due(days: int | None) -> int | None:
    if days is not None and not 0 <= days <= MAX_DUE_IN_DAYS:
        raise InvalidRequestError(f"the due date is 0 to {MAX_DUE_IN_DAYS} days away")
    return days


def _message(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_MESSAGE:
        raise InvalidRequestError(f"the message is longer than {MAX_MESSAGE} characters")
    return text


def _details(template: RequestTemplate, **more: object) -> dict[str, object]:
    return {
        "template_id": str(template.id),
        "name": template.name,
        "title": template.title,
        "items": template.item_names,
        "due_in_days": template.due_in_days,
        **more,
    }


def due_date_from(template: RequestTemplate, today: date) -> date | None:
    """The due date a request started from `template` on `today` gets, if it says one."""
    if template.due_in_days is None:
        return None
    return today + timedelta(days=template.due_in_days)


async def list_templates(
    session: AsyncSession, principal: Principal, context: audit.AuditContext
) -> list[RequestTemplate]:
    """Every template, by name."""
    _require_firm(principal)
    rows = await session.execute(select(RequestTemplate).order_by(col(RequestTemplate.name_key)))
    templates = list(rows.scalars().all())
    await audit.record(
        session, context, AuditAction.REQUEST_TEMPLATE_LISTED,
        target_type="request_template", details={"templates": len(templates)},
    )  # fmt: skip
    return templates


async def get_template(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    template_id: uuid.UUID,
) -> RequestTemplate:
    """One template, to read or to start a request from."""
    template = await _find(session, principal, template_id)
    await audit.record(
        session, context, AuditAction.REQUEST_TEMPLATE_VIEWED,
        target_type="request_template", target_id=template.id,
        details={"template_id": str(template.id), "name": template.name},
    )  # fmt: skip
    return template


async def _find(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> RequestTemplate:
    _require_firm(principal)
    template = await session.get(RequestTemplate, template_id)
    if template is None:
        raise NotFoundError("template not found")
    return template


async def _save(session: AsyncSession, template: RequestTemplate) -> None:
    try:
        # A savepoint, so a name already taken leaves the caller's transaction usable.
        async with session.begin_nested():
            session.add(template)
            await session.flush()
    except IntegrityError as exc:
        raise ConflictError("a template of that name exists") from exc


async def create_template(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    name: str,
    title: str,
    items: Sequence[str],
    message: str = "",
    due_in_days: int | None = None,
) -> RequestTemplate:
    """Save a new template (staff, admin).

    Raises:
        InvalidRequestError: a field is empty or too long.
        ConflictError: another template has that name (case aside).
    """
    _require_firm(principal, change=True)
    clean = _text(name, "the name")
    template = RequestTemplate(
        name=clean,
        name_key=clean.casefold(),
        title=_text(title, "the title"),
        message=_message(message),
        items="\n".join(_names(items)),
        due_in_days=_due(due_in_days),
        created_by=principal.user_ref,
    )
    await _save(session, template)
    await audit.record(
        session, context, AuditAction.REQUEST_TEMPLATE_CREATED,
        target_type="request_template", target_id=template.id, details=_details(template),
    )  # fmt: skip
    return template


async def update_template(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    template_id: uuid.UUID,
    *,
    name: str | None = None,
    title: str | None = None,
    items: Sequence[str] | None = None,
    message: str | None = None,
    due_in_days: int | EllipsisType | None = ...,
) -> RequestTemplate:
    """Change a template (staff, admin); what is left None stays, and `due_in_days=None`
    clears the default due date (left out, `...`, it stays)."""
    _require_firm(principal, change=True)
    template = await _find(session, principal, template_id)
    before = (template.name, template.title, template.items, template.message)
    before_due = template.due_in_days
    if name is not None:
        template.name = _text(name, "the name")
        template.name_key = template.name.casefold()
    if title is not None:
        template.title = _text(title, "the title")
    if items is not None:
        template.items = "\n".join(_names(items))
    if message is not None:
        template.message = _message(message)
    if not isinstance(due_in_days, EllipsisType):
        template.due_in_days = _due(due_in_days)
    after = (template.name, template.title, template.items, template.message)
    labels = ("name", "title", "items", "message")
    fields = [f for f, old, new in zip(labels, before, after, strict=True) if old != new]
    if before_due != template.due_in_days:
        fields.append("due_in_days")
    if fields:
        template.updated_at = datetime.now(UTC)
        await _save(session, template)
        await audit.record(
            session, context, AuditAction.REQUEST_TEMPLATE_UPDATED,
            target_type="request_template", target_id=template.id,
            details=_details(template, fields=fields),
        )  # fmt: skip
    return template


async def delete_template(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    template_id: uuid.UUID,
) -> None:
    """Delete a template (staff, admin); requests started from it keep what they copied."""
    _require_firm(principal, change=True)
    template = await _find(session, principal, template_id)
    # Recorded first, while the row still names the event's target.
    await audit.record(
        session, context, AuditAction.REQUEST_TEMPLATE_DELETED,
        target_type="request_template", target_id=template.id, details=_details(template),
    )  # fmt: skip
    await session.delete(template)
    await session.flush()
