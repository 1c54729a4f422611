"""The folder browser: a client's folders, search, documents, versions, previews, trash.

Every page works without JavaScript: sorting is links, actions are forms posted with the
session's CSRF token and answered by a redirect (or the page again, with the error).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from vault import documents as doc_service
from vault import drops, quotas, receipts, search, trash
from vault import folders as folder_service
from vault.db import transaction
from vault.errors import ConflictError, InvalidNameError
from vault.models import Client, Document, Folder
from vault.policy import Permission, Principal, allows
from web.api.documents import DOWNLOAD_CSP
from web.auth import CSRF_FIELD, Caller, deliberate
from web.context import audit_context, services
from web.folder_zip import Member, archive
from web.http import content_disposition
from web.ids import parse_id
from web.pages import link_pages
from web.pages import quarantine as held_pages
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.document import document_page, restore_version, trash_document
from web.pages.render import render

logger = logging.getLogger(__name__)

FOLDER_NOTICES = frozenset({"folder-created", "trashed"}) | held_pages.NOTICES
TRASH_NOTICES = frozenset({"restored"})
COLUMNS = folder_service.SORT_KEYS


@dataclass(frozen=True, slots=True)
class SortLink:
    column: str
    href: str
    aria_sort: str  # "ascending", "descending" or "" for a column not sorted by


def sort_state(request: Request) -> tuple[str, bool]:
    sort = request.query_params.get("sort", "name")
    if sort not in COLUMNS:
        sort = "name"
    return sort, request.query_params.get("order", "asc") == "desc"


def sort_links(path: str, sort: str, descending: bool) -> dict[str, SortLink]:
    links: dict[str, SortLink] = {}
    for column in COLUMNS:
        current = column == sort
        order = "asc" if current and descending else ("desc" if current else "asc")
        aria = ("descending" if descending else "ascending") if current else ""
        links[column] = SortLink(
            column, f"{path}?{urlencode({'sort': column, 'order': order})}", aria
        )
    return links


def crumbs(client: Client, chain: list[Folder]) -> list[tuple[str, str]]:
    """(label, link) from the client down to the current folder."""
    return [(client.name, f"/clients/{client.id}")] + [(f.name, f"/folders/{f.id}") for f in chain]


def abilities(principal: Principal, client_id: uuid.UUID) -> dict[str, Any]:
    return {
        "can_upload": allows(principal, Permission.UPLOAD, client_id),
        "can_download": allows(principal, Permission.DOWNLOAD, client_id),
        "can_create_folder": allows(principal, Permission.CREATE_FOLDER, client_id),
        "can_delete": allows(principal, Permission.DELETE, client_id),
        "can_manage": doc_service.may_manage(principal, client_id),
    }


async def _listing_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    client: Client,
    folder: Folder | None,
    status: int = 200,
    folder_error: str = "",
    folder_name: str = "",
) -> Response:
    assert caller.browser is not None
    sort, descending = sort_state(request)
    folders, _ = await folder_service.children(
        session, client_id=client.id, folder_id=folder.id if folder else None
    )
    subfolders = list(folders)
    if sort == "name" and descending:
        subfolders.reverse()
    documents: list[folder_service.ListedDocument] = []
    chain: list[Folder] = []
    if folder is not None:
        chain = await folder_service.ancestors(session, folder)
        documents = folder_service.sort_documents(
            await folder_service.listed_documents(session, folder.id),
            sort=sort,
            descending=descending,
        )
    await folder_service.record_listed(
        session,
        audit_context(request, caller.principal),
        client.id,
        folder.id if folder else None,
    )
    return render(
        request,
        "folder.html" if folder else "client.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        client=client,
        folder=folder,
        crumbs=crumbs(client, chain),
        folders=subfolders,
        documents=documents,
        sort=sort,
        descending=descending,
        links=sort_links(request.url.path, sort, descending),
        notice=notice(request, FOLDER_NOTICES),
        held=await held_pages.held_rows(
            session, caller.principal, folder_id=folder.id if folder else None
        ),
        dropped=await drops.dropped_in_folder(session, caller.principal, folder.id)
        if folder
        else [],
        folder_error=folder_error,
        folder_name=folder_name,
        create_action=f"/folders/{folder.id}/folders"
        if folder
        else f"/clients/{client.id}/folders",
        share_panel=None
        if folder is None
        else await link_pages.panel(session, caller.principal, services(request), folder=folder),
        usage=await quotas.usage(
            session, client.id, default=services(request).settings.quotas.default_bytes
        ),
        **abilities(caller.principal, client.id),
    )


@page
async def client_page(request: Request) -> Response:
    client_id = parse_id(request.path_params["client_id"], "client")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        client = await folder_service.get_client(session, caller.principal, client_id)
        return await _listing_page(request, session, caller, client=client, folder=None)


@page
async def folder_page(request: Request) -> Response:
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        folder = await folder_service.get_folder(session, caller.principal, folder_id)
        client = await session.get_one(Client, folder.client_id)
        return await _listing_page(request, session, caller, client=client, folder=folder)


async def _create_folder(
    request: Request, *, client_id: uuid.UUID | None, parent_id: uuid.UUID | None
) -> Response:
    form = await read_form(request)
    name = form.get("name", "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        parent: Folder | None = None
        if parent_id is not None:
            parent = await folder_service.get_folder(session, caller.principal, parent_id)
            client_id = parent.client_id
        assert client_id is not None
        client = await folder_service.get_client(session, caller.principal, client_id)
        try:
            async with session.begin_nested():
                created = await folder_service.create_folder(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    client_id=client.id,
                    parent_id=parent_id,
                    name=name,
                )
        except InvalidNameError as exc:
            error = exc.message
        except ConflictError:
            error = "taken"
        else:
            return see_other(f"/folders/{created.id}?done=folder-created")
        return await _listing_page(
            request,
            session,
            caller,
            client=client,
            folder=parent,
            status=422 if error != "taken" else 409,
            folder_error=error,
            folder_name=name[:255],
        )


@page
async def create_root_folder(request: Request) -> Response:
    client_id = parse_id(request.path_params["client_id"], "client")
    return await _create_folder(request, client_id=client_id, parent_id=None)


@page
async def create_subfolder(request: Request) -> Response:
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    return await _create_folder(request, client_id=None, parent_id=folder_id)


@page
async def search_page(request: Request) -> Response:
    client_id = parse_id(request.path_params["client_id"], "client")
    query = request.query_params.get("q", "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        assert caller.browser is not None
        client = await folder_service.get_client(session, caller.principal, client_id)
        result = await search.search(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            client_id=client.id,
            query=query,
        )
        return render(
            request,
            "search.html",
            user=caller.user,
            csrf_token=caller.browser.csrf_token,
            client=client,
            crumbs=crumbs(client, []),
            result=result,
            **abilities(caller.principal, client.id),
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
        headers = {
            "Content-Disposition": content_disposition(f"{root.name}.zip"),
            "Content-Security-Policy": DOWNLOAD_CSP,
            "Cache-Control": "private, no-store",
        }
        if request.method == "HEAD":
            # Starlette would build (and decrypt) the whole archive only for the server to
            # drop it: a HEAD learns the headers and downloads, and so records, nothing.
            return Response(media_type="application/zip", headers=headers)
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
                archive_folder_id=root.id,
            )
        files = [m for m in members if m.opened is not None]
        await folder_service.record_downloaded(
            session, context, root, documents=len(files), size=sum(m.size for m in files)
        )
        client_id, user_ref = root.client_id, caller.principal.user_ref

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
            logger.exception("could not record the receipts of an archive of %s", folder_id)

    return StreamingResponse(
        archive(svc.store, members, on_complete=delivered),
        media_type="application/zip",
        headers=headers,
    )


@page
async def trash_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        assert caller.browser is not None
        found = await trash.list_trash(
            session, caller.principal, audit_context(request, caller.principal)
        )
        return render(
            request,
            "trash.html",
            user=caller.user,
            csrf_token=caller.browser.csrf_token,
            items=found,
            notice=notice(request, TRASH_NOTICES),
            error="",
        )


@page
async def restore_from_trash(request: Request) -> Response:
    document_id = parse_id(request.path_params["document_id"], "document")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        try:
            async with session.begin_nested():
                document = await trash.restore(
                    session, caller.principal, audit_context(request, caller.principal), document_id
                )
        except ConflictError:
            taken = await session.get_one(Document, document_id)
            return render(
                request,
                "trash.html",
                status=409,
                user=caller.user,
                csrf_token=caller.browser.csrf_token,
                items=await trash.list_trash(
                    session, caller.principal, audit_context(request, caller.principal)
                ),
                notice="",
                error=taken.name,
            )
    return see_other(f"/trash?done=restored&document={document.id}")


def routes() -> list[BaseRoute]:
    return [
        Route("/clients/{client_id}", client_page, methods=["GET"]),
        Route("/clients/{client_id}/folders", create_root_folder, methods=["POST"]),
        Route("/clients/{client_id}/search", search_page, methods=["GET"]),
        Route("/folders/{folder_id}", folder_page, methods=["GET"]),
        Route("/folders/{folder_id}/folders", create_subfolder, methods=["POST"]),
        Route("/folders/{folder_id}/download.zip", folder_zip, methods=["GET"]),
        Route("/documents/{document_id}", document_page, methods=["GET"]),
        Route(
            "/documents/{document_id}/versions/{number}/restore",
            restore_version,
            methods=["POST"],
        ),
        Route("/documents/{document_id}/trash", trash_document, methods=["POST"]),
        Route("/trash", trash_page, methods=["GET"]),
        Route("/trash/{document_id}/restore", restore_from_trash, methods=["POST"]),
    ]


__all__ = ["routes"]
