"""What a visitor reaches through a usable link, and the events of their visit.

A document link reaches its one document (its pinned version, or the latest). A folder link
reaches its folder and the folders below it, never a parent or a sibling: every folder and
document id a visitor sends is checked against the link's folder by walking up from it
(NC-SA-2020-015 was a share whose checks one route forgot). Each route that yields bytes
comes here first, and each view, download and refusal is an event naming the link.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vault import audit, links
from vault.audit.actions import AuditAction
from vault.documents import get_version
from vault.errors import LinkNotFoundError, NotFoundError
from vault.folders import (
    ArchiveEntry,
    ListedDocument,
    ancestors,
    children,
    listed_documents,
    tree,
)
from vault.links import Link, LinkRef
from vault.models import Document, Folder, Version


@dataclass(frozen=True, slots=True)
class FolderView:
    """A folder of a folder link: the way down from the link's folder, and its contents."""

    folder: Folder
    trail: Sequence[Folder]  # the link's folder first, this folder last
    folders: Sequence[Folder]
    documents: Sequence[ListedDocument]


async def scoped_folder(
    session: AsyncSession, link: Link, folder_id: uuid.UUID | None
) -> tuple[Folder, list[Folder]]:
    """The folder `folder_id` (default: the link's) with its trail from the link's folder;
    `LinkNotFoundError` for any folder outside the link's folder."""
    if link.folder_id is None:
        raise LinkNotFoundError("not_a_folder_link", link)
    folder = await session.get(Folder, folder_id or link.folder_id)
    if folder is None or folder.client_id != link.client_id:
        raise LinkNotFoundError("outside_folder", link)
    chain = await ancestors(session, folder)
    positions = [f.id for f in chain]
    if link.folder_id not in positions:
        raise LinkNotFoundError("outside_folder", link)
    return folder, chain[positions.index(link.folder_id) :]


async def folder_view(session: AsyncSession, link: Link, folder_id: uuid.UUID | None) -> FolderView:
    folder, trail = await scoped_folder(session, link, folder_id)
    subfolders, _ = await children(session, client_id=folder.client_id, folder_id=folder.id)
    return FolderView(folder, trail, subfolders, await listed_documents(session, folder.id))


async def scoped_document(
    session: AsyncSession, link: Link, document_id: uuid.UUID | None
) -> tuple[Document, Version]:
    """The document and version a download through the link serves: the link's document,
    or a live document under the link's folder."""
    try:
        return await _scoped_document(session, link, document_id)
    except LinkNotFoundError:
        raise
    except NotFoundError:
        raise LinkNotFoundError("target_gone", link) from None


async def _scoped_document(
    session: AsyncSession, link: Link, document_id: uuid.UUID | None
) -> tuple[Document, Version]:
    if link.document_id is not None:
        if document_id is not None and document_id != link.document_id:
            raise LinkNotFoundError("outside_document", link)
        document = await session.get(Document, link.document_id)
        if document is None or document.deleted_at is not None:
            raise LinkNotFoundError("target_gone", link)
        return document, await get_version(session, document, link.version)
    if document_id is None:
        raise LinkNotFoundError("not_a_document_link", link)
    document = await session.get(Document, document_id)
    if document is None or document.deleted_at is not None:
        raise LinkNotFoundError("outside_folder", link)
    await scoped_folder(session, link, document.folder_id)
    return document, await get_version(session, document, None)


async def archive_entries(
    session: AsyncSession, link: Link, folder_id: uuid.UUID | None
) -> list[ArchiveEntry]:
    """Everything under a folder of the link, for a ZIP archive."""
    folder, _ = await scoped_folder(session, link, folder_id)
    return await tree(session, folder)


async def record_view(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    folder_id: uuid.UUID | None = None,
    locked: bool = False,
) -> None:
    """A visit to the link's page; `locked` when it showed only the password or code form."""
    shown = None if folder_id is None else str(folder_id)
    await links.record(
        session, context, AuditAction.LINK_VIEWED, link, shown_folder_id=shown, locked=locked
    )


async def admit_download(
    session: AsyncSession,
    context: audit.AuditContext,
    link: Link,
    *,
    document_id: uuid.UUID | None,
    version: int | None,
    via: str,
    range_: str | None = None,
    size: int | None = None,
) -> bool:
    """Count one download against the link's limit and record it; False (and a refusal
    recorded) when the limit is reached, also by a concurrent visitor."""
    if not await links.count_download(session, link):
        await record_refusal(session, context, link, "exhausted")
        return False
    await links.record(
        session,
        context,
        AuditAction.LINK_DOWNLOADED,
        link,
        document_id=document_id,
        via=via,
        version=version,
        range=range_,
        bytes=size,
        downloads=link.downloads,
    )
    return True


async def record_refusal(
    session: AsyncSession, context: audit.AuditContext, link: Link | LinkRef, reason: str
) -> None:
    """A refused attempt on a known link (expired, revoked, exhausted, locked, outside)."""
    await links.record(
        session, context, AuditAction.LINK_REFUSED, link, outcome="denied", reason=reason
    )
