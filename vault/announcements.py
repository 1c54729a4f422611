"""Firm-wide announcements: staff post short notices that every signed-in user sees until
they expire or are withdrawn.

Posting and withdrawing are audited in their transaction (`announcement.posted`,
`announcement.withdrawn`). Announcements belong to no client, so they carry no client id
and the notifier, which reads `document.*` events, sends no email for them.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import ConflictError, InvalidAnnouncementError, NotFoundError
from vault.models import Announcement
from vault.policy import Principal, require_firm

MAX_TITLE = 200
MAX_BODY = 5000


def _control_free(value: str, field: str, *, keep: str = "") -> None:
    # Control characters could hide text in the page or forge lines in a log viewer.
    if any(unicodedata.category(c) == "Cc" and c not in keep for c in value):
        raise InvalidAnnouncementError(
            field, "control", f"the {field} may not contain control characters"
        )


def clean_title(value: str) -> str:
    """The title on one line, whitespace collapsed; raises `InvalidAnnouncementError`."""
    _control_free(value, "title", keep="\t\r\n")
    title = " ".join(value.split())
    if not title:
        raise InvalidAnnouncementError("title", "empty", "the title must not be empty")
    if len(title) > MAX_TITLE:
        raise InvalidAnnouncementError(
            "title", "long", f"the title is longer than {MAX_TITLE} characters"
        )
    return title


def clean_body(value: str) -> str:
    """Plain text with its line breaks kept; raises `InvalidAnnouncementError`."""
    body = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    _control_free(body, "body", keep="\n\t")
    if not body:
        raise InvalidAnnouncementError("body", "empty", "the text must not be empty")
    if len(body) > MAX_BODY:
        raise InvalidAnnouncementError(
            "body", "long", f"the text is longer than {MAX_BODY} characters"
        )
    return body


async def current(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    limit: int = 20,
    context: audit.AuditContext | None = None,
) -> list[Announcement]:
    """Announcements neither withdrawn nor expired at `now`, newest first; shown to someone
    (audited) when `context` is given.

    Every signed-in user may read them, so this takes no principal.
    """
    now = now or datetime.now(UTC)
    rows = await session.execute(
        select(Announcement)
        .where(
            col(Announcement.withdrawn_at).is_(None),
            or_(col(Announcement.expires_at).is_(None), col(Announcement.expires_at) > now),
        )
        .order_by(col(Announcement.created_at).desc(), col(Announcement.id))
        .limit(limit)
    )
    found = list(rows.scalars().all())
    if context is not None:
        await audit.record(
            session, context, AuditAction.ANNOUNCEMENT_LISTED, details={"announcements": len(found)}
        )
    return found


async def post(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    title: str,
    body: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> Announcement:
    """Post an announcement (staff and admins), shown until `expires_at` if given."""
    require_firm(principal, "post announcements")
    now = now or datetime.now(UTC)
    title = clean_title(title)
    body = clean_body(body)
    if expires_at is not None and expires_at <= now:
        raise InvalidAnnouncementError("expires", "past", "the expiry must be in the future")
    announcement = Announcement(
        title=title,
        body=body,
        created_by=principal.user_ref,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(announcement)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.ANNOUNCEMENT_POSTED,
        target_type="announcement",
        target_id=announcement.id,
        details={
            "title": title,
            "expires_at": audit.timestamp(expires_at) if expires_at else None,
        },
    )
    return announcement


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    announcement_id: uuid.UUID,
) -> Announcement:
    """Take an announcement down (staff and admins); it stays in the audit log."""
    require_firm(principal, "withdraw announcements")
    announcement = (
        await session.execute(
            select(Announcement).where(Announcement.id == announcement_id).with_for_update()
        )
    ).scalar_one_or_none()
    if announcement is None:
        raise NotFoundError("announcement not found")
    if announcement.withdrawn_at is not None:
        raise ConflictError("the announcement is already withdrawn")
    announcement.withdrawn_at = datetime.now(UTC)
    session.add(announcement)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.ANNOUNCEMENT_WITHDRAWN,
        target_type="announcement",
        target_id=announcement.id,
        details={"title": announcement.title},
    )
    return announcement
