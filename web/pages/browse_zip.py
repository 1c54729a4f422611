"""Zip archives from the folder browser: a whole folder (`GET /folders/{id}/download.zip`) or
the documents picked in its listing (the selection form's `zip` action).

Both are built the same way: each document's download is recorded in the request's
transaction as it would be one by one (`via: zip`), the archive streams after it commits,
and delivery receipts are written once the last byte is out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vault import audit, receipts
from vault import documents as doc_service
from vault import folders as folder_service
from vault.db import transaction
from vault.folders import ArchiveEntry
from web.api.documents import DOWNLOAD_CSP
from web.auth import deliberate
from web.context import audit_context, services
from web.folder_zip import Member, archive
from web.http import content_disposition
from web.ids import parse_id
from web.pages.common import browser_caller, page
from web.services import Services

logger = logging.getLogger(__name__)


def zip_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(filename),
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Cache-Control": "private, no-store",
    }


async def members_of(
    session: AsyncSession,
    svc: Services,
    context: audit.AuditContext,
    entries: Sequence[ArchiveEntry],
    *,
    archive_folder_id: uuid.UUID,
) -> list[Member]:
    """The archive's members, each document's download recorded as it goes in."""
    members: list[Member] = []
    for entry in entries:
        if entry.document is None or entry.version is None:
            members.append(Member(entry.path, entry.folder.created_at))
            continue
        document, version = entry.document, entry.version
        members.append(
            Member(
                entry.path,
                version.created_at,
                document_id=document.id,
                version_id=version.id,
                number=version.number,
                size=version.size,
                content_type=version.content_type,
                storage_key=version.storage_key,
                object_size=version.object_size,
                opened=doc_service.open_version(svc.keyring, document, version),
            )
        )
        # Each document's own access history shows it went out inside an archive.
        await doc_service.record_download(
            session,
            context,
            document,
            version=version.number,
            range_=None,
            size=version.size,
            archive_folder_id=archive_folder_id,
        )
    return members


def stream_archive(
    request: Request,
    members: Sequence[Member],
    *,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    user_ref: uuid.UUID | None,
    headers: dict[str, str],
) -> StreamingResponse:
    """Stream `members` (recorded already, in a committed transaction) as one ZIP."""
    svc = services(request)
    files = [m for m in members if m.opened is not None]
    wanted = deliberate(request)

    async def delivered() -> None:
        if not wanted:
            return  # forced by another site: sent, but no receipt (review item 12)
        try:
            async with transaction(svc.sessions) as session:
                for member in files:
                    assert member.document_id and member.version_id
                    await receipts.record_completed(
                        session,
                        context,
                        receipts.Completed(
                            client_id,
                            member.document_id,
                            member.version_id,
                            member.number,
                            user_ref,
                            via="zip",
                        ),
                    )
        except Exception:
            # The archive is already with the client: a failed receipt must not fail it.
            logger.exception("could not record the receipts of an archive for %s", client_id)

    return StreamingResponse(
        archive(svc.store, members, on_complete=delivered),
        media_type="application/zip",
        headers=headers,
    )


@page
async def folder_zip(request: Request) -> Response:
    svc = services(request)
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session)
        context = audit_context(request, caller.principal)
        entries = await folder_service.subtree(session, caller.principal, folder_id)
        root = entries[0].folder
        headers = zip_headers(f"{root.name}.zip")
        if request.method == "HEAD":
            # Starlette would build (and decrypt) the whole archive only for the server to
            # drop it: a HEAD learns the headers and downloads, and so records, nothing.
            return Response(media_type="application/zip", headers=headers)
        members = await members_of(session, svc, context, entries, archive_folder_id=root.id)
        files = [m for m in members if m.opened is not None]
        await folder_service.record_downloaded(
            session, context, root, documents=len(files), size=sum(m.size for m in files)
        )
        client_id, user_ref = root.client_id, caller.principal.user_ref
    return stream_archive(
        request, members, context=context, client_id=client_id, user_ref=user_ref, headers=headers
    )
