"""Files dropped through upload-request links: who dropped what, and the link's limits.

A visitor's upload is owned by the link's creator (its permission to write the folder is
what the link lends, and a creator who loses it takes the link down with it), but it is
committed by the system, so no user is named as its uploader: the drop row says who gave
which name and email, from which address, and when. A visitor can never list or download
anything, so nothing here answers them with more than "stored".

Limits are checked before any byte is accepted: the file's size against `max_file_bytes`,
and a reservation of one file and its length against `max_files` / `max_total_bytes`,
taken by one conditional UPDATE of the link's counters, so racing visitors cannot overrun
them. A reservation stays counted if its upload is abandoned.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, String, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from vault import audit, link_policy, links
from vault.audit.actions import AuditAction
from vault.documents import may_manage
from vault.errors import InvalidDropError, LinkFullError, LinkNotFoundError
from vault.folders import get_folder
from vault.links import Link, LinkKind
from vault.models import Document, Version, utcnow
from vault.policy import Principal
from vault.quarantine import Committed
from vault.quarantine_tables import HeldVersion

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_NAME = 200


class Drop(SQLModel, table=True):
    __tablename__ = "link_drops"
    upload_id: uuid.UUID = Field(primary_key=True)
    link_id: uuid.UUID = Field(foreign_key="links.id", index=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id")
    folder_id: uuid.UUID = Field(foreign_key="folders.id", index=True)
    document_id: uuid.UUID
    version_id: uuid.UUID = Field(unique=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    length: int = Field(sa_column=Column(BigInteger, nullable=False))
    uploader_name: str = Field(sa_column=Column(String(MAX_NAME), nullable=False))
    uploader_email: str = Field(sa_column=Column(String(320), nullable=False))
    ip: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(default_factory=utcnow)
    # When the staff of the client were told of it (by the notifier, batched per link).
    notified_at: datetime | None = None


def clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidDropError("give your name", field="uploader_name")
    if len(name) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidDropError(
            "the name is too long or holds control characters", field="uploader_name"
        )
    return name


def clean_email(raw: str) -> str:
    email = raw.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidDropError("give an email address", field="uploader_email")
    return email


async def open_link(
    session: AsyncSession,
    token: str,
    *,
    defaults: link_policy.LinkDefaults,
    continuing: bool,
) -> Link:
    """The upload link `token` opens. An upload already under way may continue on a link
    whose limits its own reservation filled (`continuing`); anything else dead is
    `LinkNotFoundError`."""
    try:
        return await links.resolve(session, token, defaults=defaults, kind=LinkKind.UPLOAD)
    except LinkNotFoundError as exc:
        if not continuing or exc.reason != "exhausted" or exc.link is None:
            raise
        link = await session.get(Link, exc.link.id)
        if link is None or link.kind != LinkKind.UPLOAD:
            raise
        policy = await link_policy.effective(session, defaults, link.client_id)
        if not policy.allowed:
            raise LinkNotFoundError("links_disabled", link) from None
        return link


async def lender(session: AsyncSession, link: Link) -> Principal:
    """The link's creator, whose permission to write the folder the link lends."""
    return await links.lender(session, link)


async def admit(session: AsyncSession, link: Link, *, length: int) -> None:
    """Reserve one file of `length` bytes against the link's limits, or refuse it."""
    if link.max_file_bytes is not None and length > link.max_file_bytes:
        raise LinkFullError(
            f"files through this link may be at most {link.max_file_bytes} bytes",
            reason="too_large",
        )
    result = await session.execute(
        update(Link)
        .where(
            col(Link.id) == link.id,
            or_(col(Link.max_files).is_(None), col(Link.files_received) < col(Link.max_files)),
            or_(
                col(Link.max_total_bytes).is_(None),
                col(Link.bytes_received) + length <= col(Link.max_total_bytes),
            ),
        )
        .values(
            files_received=col(Link.files_received) + 1,
            bytes_received=col(Link.bytes_received) + length,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise LinkFullError("this link takes no more files (its limit is reached)")


async def record(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    upload_id: uuid.UUID,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    name: str,
    length: int,
    uploader_name: str,
    uploader_email: str,
) -> Drop:
    assert link.folder_id is not None  # upload links lead into a folder
    drop = Drop(
        upload_id=upload_id,
        link_id=link.id,
        client_id=link.client_id,
        folder_id=link.folder_id,
        document_id=document_id,
        version_id=version_id,
        name=name,
        length=length,
        uploader_name=clean_name(uploader_name),
        uploader_email=clean_email(uploader_email),
        ip=context.ip,
    )
    session.add(drop)
    await session.flush()
    await links.record(
        session,
        context,
        AuditAction.LINK_DROP_STARTED,
        link,
        document_id=document_id,
        upload_id=str(upload_id),
        name=name,
        length=length,
        uploader_name=drop.uploader_name,
        uploader_email=drop.uploader_email,
    )
    return drop


async def belongs(session: AsyncSession, link: Link, upload_id: uuid.UUID) -> bool:
    drop = await session.get(Drop, upload_id)
    return drop is not None and drop.link_id == link.id


@dataclass(frozen=True, slots=True)
class DroppedFile:
    drop: Drop
    # "published" (a version), or the quarantine state while held.
    state: str
    document_id: uuid.UUID | None  # to link to, once published and not trashed


async def dropped_in_folder(
    session: AsyncSession, principal: Principal, folder_id: uuid.UUID, *, limit: int = 100
) -> list[DroppedFile]:
    """The finished drops into a folder, newest first; only for staff of its client."""
    folder = await get_folder(session, principal, folder_id)
    if not may_manage(principal, folder.client_id):
        return []
    drops: Sequence[Drop] = (
        (
            await session.execute(
                select(Drop)
                .where(Drop.folder_id == folder.id)
                .order_by(col(Drop.created_at).desc())
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    versions = {d.version_id for d in drops}
    published = set(
        (await session.execute(select(Version.id).where(col(Version.id).in_(versions)))).scalars()
    )
    held = {
        row.version_id: row.state
        for row in (
            await session.execute(
                select(HeldVersion).where(col(HeldVersion.version_id).in_(versions))
            )
        ).scalars()
        if row.deleted_at is None
    }
    live = set(
        (
            await session.execute(
                select(Document.id).where(
                    col(Document.id).in_({d.document_id for d in drops}),
                    col(Document.deleted_at).is_(None),
                )
            )
        ).scalars()
    )
    found = []
    for drop in drops:
        if drop.version_id in published:
            link_to = drop.document_id if drop.document_id in live else None
            found.append(DroppedFile(drop, "published", link_to))
        elif drop.version_id in held:
            found.append(DroppedFile(drop, held[drop.version_id], None))
    return found


async def record_dropped(
    session: AsyncSession,
    context: audit.AuditContext,
    link_id: uuid.UUID,
    upload_id: uuid.UUID,
    committed: Committed,
) -> None:
    """`link.dropped`, with the version: the notifier tells the client's staff (batched)."""
    link = await session.get_one(Link, link_id)
    drop = await session.get_one(Drop, upload_id)
    await links.record(
        session,
        context,
        AuditAction.LINK_DROPPED,
        link,
        document_id=committed.document_id,
        name=committed.name,
        size=drop.length,
        held=committed.held,
        uploader_name=drop.uploader_name,
        uploader_email=drop.uploader_email,
    )
