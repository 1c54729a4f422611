"""The audit record of a link's address emailed to its recipient.

The email itself is the web layer's work (it carries the token, which nothing stores); this
records that it was sent, or that it could not be, naming the link by id and the recipient.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import InvalidLinkError, NotFoundError
from vault.links import Link, record
from vault.policy import Principal


async def sendable(session: AsyncSession, principal: Principal, link_id: uuid.UUID) -> Link:
    """The link `principal` just created, if it has a recipient to email its address to.

    Only the creator may: nobody else ever held the token."""
    link = await session.get(Link, link_id)
    if link is None or link.created_by != principal.user_id or link.revoked_at is not None:
        raise NotFoundError("link not found")
    if not link.recipient_email:
        raise InvalidLinkError("the link has no recipient email", field="recipient_email")
    return link


async def record_sent(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    link_id: uuid.UUID,
    *,
    delivered: bool,
) -> None:
    """Append `link.sent` (a failure when the mail server refused or could not be reached)."""
    link = await sendable(session, principal, link_id)
    await record(
        session,
        context,
        AuditAction.LINK_SENT,
        link,
        outcome="success" if delivered else "failure",
        recipient=link.recipient_email,
    )
