"""Share links (download) and upload-request links (file drop) for people without an account.

A link is one row of `links`: its kind, its target (a document, optionally pinned to a
version, or a folder), its expiry and limits. The token in its URL carries 256 random bits
and only its SHA-256 is stored, so a database reader cannot use a link (a fast hash is
enough at that entropy: ASVS 6.5.2, as for access tokens). The token is never logged and
never written into an audit event; events name the link by its id.

`resolve` answers one `LinkNotFoundError` whether a token is unknown, expired, revoked,
exhausted, its target gone or its creator no longer allowed what the link lends, so a
visitor cannot tell a dead link from a never-valid one.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import BigInteger, Column, Integer, String, Text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, or_, select

from vault import audit, link_policy
from vault.accounts.passwords import hash_password, off_loop
from vault.accounts.users import principal_for
from vault.audit.actions import AuditAction
from vault.documents import get_document, get_version
from vault.errors import InvalidLinkError, LinkNotFoundError, NotFoundError, PermissionDeniedError
from vault.folders import get_folder
from vault.link_rules import LinkKind, LinkSpec, aware, check_spec, may_create
from vault.models import Document, Folder, User, utcnow
from vault.policy import Permission, Principal, allows, can_see_client, is_firm

__all__ = [
    "VISITOR",
    "InvalidLinkError",
    "Link",
    "LinkKind",
    "LinkRef",
    "LinkSpec",
    "LinkState",
    "aware",
    "count_download",
    "create_for_document",
    "create_for_folder",
    "details",
    "hash_token",
    "lender",
    "list_audited",
    "list_links",
    "may_create",
    "new_token",
    "record",
    "ref",
    "resolve",
    "revoke",
    "state",
]

TOKEN_BYTES = 32  # 256 bits
VISITOR = "visitor"  # the actor role of events caused through a link


class LinkState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class LinkRef:
    """What an event names of a link; outlives the transaction its row was read in."""

    id: uuid.UUID
    kind: str
    client_id: uuid.UUID
    document_id: uuid.UUID | None
    folder_id: uuid.UUID | None
    created_by: uuid.UUID | None


def ref(link: Link | LinkRef) -> LinkRef:
    if isinstance(link, LinkRef):
        return link
    return LinkRef(
        link.id, str(link.kind), link.client_id, link.document_id, link.folder_id, link.created_by
    )


class Link(SQLModel, table=True):
    __tablename__ = "links"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: LinkKind = Field(sa_column=Column(String(16), nullable=False))
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    document_id: uuid.UUID | None = Field(default=None, foreign_key="documents.id", index=True)
    # A pinned version of the document; None follows the latest.
    version: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    folder_id: uuid.UUID | None = Field(default=None, foreign_key="folders.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    expires_at: datetime
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recipient_email: str | None = Field(default=None, sa_column=Column(String(320)))
    max_downloads: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    max_file_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_files: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    max_total_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    downloads: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    files_received: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    bytes_received: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def state(link: Link, now: datetime) -> LinkState:
    if link.revoked_at is not None:
        return LinkState.REVOKED
    if aware(link.expires_at) <= now:
        return LinkState.EXPIRED
    if link.kind == LinkKind.DOWNLOAD:
        if link.max_downloads is not None and link.downloads >= link.max_downloads:
            return LinkState.EXHAUSTED
    elif (link.max_files is not None and link.files_received >= link.max_files) or (
        link.max_total_bytes is not None and link.bytes_received >= link.max_total_bytes
    ):
        return LinkState.EXHAUSTED
    return LinkState.ACTIVE


def details(link: Link | LinkRef, **more: Any) -> dict[str, Any]:
    """What every event about a link says of it: never its token."""
    return {
        "link_id": str(link.id),
        "kind": str(link.kind),
        "created_by": None if link.created_by is None else str(link.created_by),
        "folder_id": None if link.folder_id is None else str(link.folder_id),
        **more,
    }


async def record(
    session: AsyncSession,
    context: audit.AuditContext,
    action: AuditAction,
    link: Link | LinkRef,
    *,
    outcome: str = "success",
    document_id: uuid.UUID | None = None,
    **more: Any,
) -> None:
    """Append a `link.*` event naming the link, its creator and (in `context`) the address."""
    await audit.record(
        session,
        context,
        action,
        outcome=outcome,
        client_id=link.client_id,
        target_type="link",
        target_id=link.id,
        document_id=document_id or link.document_id,
        details=details(link, **more),
    )


# Creating ---------------------------------------------------------------------------------


async def _create(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    policy: link_policy.LinkDefaults,
    hasher: PasswordHasher,
    spec: LinkSpec,
    client_id: uuid.UUID,
    document_id: uuid.UUID | None,
    folder_id: uuid.UUID | None,
    now: datetime,
    max_file_bytes: int,
) -> tuple[Link, str]:
    if not may_create(principal, client_id, spec.kind, policy):
        raise PermissionDeniedError("you may not create links to this client's files")
    checked = check_spec(spec, policy, now=now, max_file_bytes=max_file_bytes)
    password_hash = (
        None
        if checked.password is None
        else await off_loop(hash_password, checked.password, hasher)
    )
    token = new_token()
    link = Link(
        kind=checked.kind,
        client_id=client_id,
        document_id=document_id,
        version=checked.version,
        folder_id=folder_id,
        token_hash=hash_token(token),
        expires_at=checked.expires_at,
        password_hash=password_hash,
        recipient_email=checked.recipient_email,
        max_downloads=checked.max_downloads,
        max_file_bytes=checked.max_file_bytes,
        max_files=checked.max_files,
        max_total_bytes=checked.max_total_bytes,
        created_by=principal.user_ref,
        created_at=now,
    )
    session.add(link)
    await session.flush()
    await record(
        session,
        context,
        AuditAction.LINK_CREATED,
        link,
        expires_at=checked.expires_at.isoformat(),
        version=checked.version,
        password=password_hash is not None,
        recipient_email=checked.recipient_email,
        max_downloads=checked.max_downloads,
        max_file_bytes=checked.max_file_bytes,
        max_files=checked.max_files,
        max_total_bytes=checked.max_total_bytes,
    )
    return link, token


async def create_for_document(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    defaults: link_policy.LinkDefaults,
    hasher: PasswordHasher,
    document_id: uuid.UUID,
    spec: LinkSpec,
    max_file_bytes: int,
    now: datetime | None = None,
) -> tuple[Link, str]:
    """Create a download link to a document (its latest or a pinned version).

    Returns the link and its token; the token exists nowhere else and is shown once.
    """
    document = await get_document(session, principal, document_id)
    if spec.kind != LinkKind.DOWNLOAD:
        raise InvalidLinkError("upload links lead into a folder", field="kind")
    if spec.version is not None:
        await get_version(session, document, spec.version)
    policy = await link_policy.effective(session, defaults, document.client_id)
    return await _create(
        session,
        principal,
        context,
        policy=policy,
        hasher=hasher,
        spec=spec,
        client_id=document.client_id,
        document_id=document.id,
        folder_id=None,
        now=now or datetime.now(UTC),
        max_file_bytes=max_file_bytes,
    )


async def create_for_folder(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    defaults: link_policy.LinkDefaults,
    hasher: PasswordHasher,
    folder_id: uuid.UUID,
    spec: LinkSpec,
    max_file_bytes: int,
    now: datetime | None = None,
) -> tuple[Link, str]:
    """Create a download link to a folder (and what is under it), or an upload link into it.

    Returns the link and its token; the token exists nowhere else and is shown once.
    """
    folder = await get_folder(session, principal, folder_id)
    policy = await link_policy.effective(session, defaults, folder.client_id)
    return await _create(
        session,
        principal,
        context,
        policy=policy,
        hasher=hasher,
        spec=spec,
        client_id=folder.client_id,
        document_id=None,
        folder_id=folder.id,
        now=now or datetime.now(UTC),
        max_file_bytes=max_file_bytes,
    )


# Listing and revoking ------------------------------------------------------------------------


def _manages_all(principal: Principal, client_id: uuid.UUID) -> bool:
    return is_firm(principal) and can_see_client(principal, client_id)


async def list_links(
    session: AsyncSession,
    principal: Principal,
    *,
    document_id: uuid.UUID | None = None,
    folder_id: uuid.UUID | None = None,
) -> Sequence[Link]:
    """Links to a document or to a folder, newest first, or else the caller's own links.

    Staff and admins see every link to what they can see; anyone else only their own.
    """
    _, found = await _listing(session, principal, document_id, folder_id)
    return found


async def _listing(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID | None,
    folder_id: uuid.UUID | None,
) -> tuple[uuid.UUID | None, Sequence[Link]]:
    query = select(Link).order_by(col(Link.created_at).desc())
    client_id: uuid.UUID | None = None
    if document_id is not None:
        client_id = (await get_document(session, principal, document_id)).client_id
        query = query.where(Link.document_id == document_id)
    if folder_id is not None:
        client_id = (await get_folder(session, principal, folder_id)).client_id
        query = query.where(Link.folder_id == folder_id)
    if client_id is None or not _manages_all(principal, client_id):
        query = query.where(Link.created_by == principal.user_id)
    return client_id, (await session.execute(query.limit(500))).scalars().all()


async def list_audited(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    document_id: uuid.UUID | None = None,
    folder_id: uuid.UUID | None = None,
) -> Sequence[Link]:
    """`list_links`, the reading audited as `link.listed`. (The document and folder pages
    show their links within a view that is audited as that page.)"""
    client_id, found = await _listing(session, principal, document_id, folder_id)
    target_type = "document" if document_id else "folder" if folder_id else None
    await audit.record(
        session,
        context,
        AuditAction.LINK_LISTED,
        client_id=client_id,
        target_type=target_type,
        target_id=document_id or folder_id,
        document_id=document_id,
        details={"count": len(found)},
    )
    return found


async def revoke(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    link_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> Link:
    """Revoke a link at once (staff of its client, admins, or its creator); idempotent."""
    link = await session.get(Link, link_id, with_for_update=True)
    if link is None or not (
        _manages_all(principal, link.client_id)
        or (link.created_by == principal.user_id and can_see_client(principal, link.client_id))
    ):
        raise NotFoundError("link not found")
    if principal.read_only:
        raise PermissionDeniedError("a read-only token may not revoke links")
    if link.revoked_at is None:
        link.revoked_at = now or datetime.now(UTC)
        link.revoked_by = principal.user_ref
        session.add(link)
        await session.flush()
        await record(session, context, AuditAction.LINK_REVOKED, link)
    return link


# Visiting ---------------------------------------------------------------------------------


async def resolve(
    session: AsyncSession,
    token: str,
    *,
    defaults: link_policy.LinkDefaults,
    kind: LinkKind | None = None,
    now: datetime | None = None,
) -> Link:
    """The usable link that `token` opens, else `LinkNotFoundError` (one error for all)."""
    now = now or datetime.now(UTC)
    if not token or len(token) > 128:
        raise LinkNotFoundError("unknown")
    link = (
        await session.execute(select(Link).where(Link.token_hash == hash_token(token)))
    ).scalar_one_or_none()
    if link is None:
        raise LinkNotFoundError("unknown")
    found = state(link, now)
    if found != LinkState.ACTIVE:
        raise LinkNotFoundError(str(found), link)
    if kind is not None and link.kind != kind:
        raise LinkNotFoundError("wrong_kind", link)
    policy = await link_policy.effective(session, defaults, link.client_id)
    if not policy.allowed:
        raise LinkNotFoundError("links_disabled", link)
    if link.document_id is not None:
        document = await session.get(Document, link.document_id)
        if document is None or document.deleted_at is not None:
            raise LinkNotFoundError("target_gone", link)
    if link.folder_id is not None and await session.get(Folder, link.folder_id) is None:
        raise LinkNotFoundError("target_gone", link)
    await lender(session, link)
    return link


async def lender(session: AsyncSession, link: Link) -> Principal:
    """The link's creator, whose permission the link lends (to download the client's files,
    or to write the folder): a creator who is deactivated (`creator_gone`) or who lost that
    permission, e.g. unassigned from the client (`creator_lost_access`), takes the link down."""
    user = None if link.created_by is None else await session.get(User, link.created_by)
    if user is None or not user.is_active:
        raise LinkNotFoundError("creator_gone", link)
    principal = await principal_for(session, user)
    needed = Permission.DOWNLOAD if link.kind == LinkKind.DOWNLOAD else Permission.UPLOAD
    if not allows(principal, needed, link.client_id):
        raise LinkNotFoundError("creator_lost_access", link)
    return principal


async def count_download(session: AsyncSession, link: Link) -> bool:
    """Count one download against the link's limit; False when the limit was reached
    (by a concurrent visitor, too: the check and the count are one UPDATE)."""
    result = await session.execute(
        update(Link)
        .where(
            col(Link.id) == link.id,
            or_(col(Link.max_downloads).is_(None), col(Link.downloads) < col(Link.max_downloads)),
        )
        .values(downloads=col(Link.downloads) + 1)
        .execution_options(synchronize_session=False)
    )
    counted = int(getattr(result, "rowcount", 0) or 0) == 1
    if counted:
        link.downloads += 1
    return counted
