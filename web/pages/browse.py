"""The folder browser: a client's folders, search, documents, versions, previews, trash.

Every page works without JavaScript: sorting is links, actions are forms posted with the
session's CSRF token and answered by a redirect (or the page again, with the error).
"""

from __future__ import annotations

import logging
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import folders as folder_service
from vault import search, trash
from vault.db import transaction
from vault.errors import ConflictError, InvalidNameError
from vault.models import Client, Document, Folder
from web.auth import CSRF_FIELD
from web.context import audit_context, services
from web.ids import parse_id
from web.pages import browse_manage
from web.pages.browse_listing import abilities, crumbs, listing_page
from web.pages.browse_zip import folder_zip
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.document import document_page, restore_version, trash_document
from web.pages.render import render

logger = logging.getLogger(__name__)

TRASH_NOTICES = frozenset({"restored"})


@page
async def client_page(request: Request) -> Response:
    client_id = parse_id(request.path_params["client_id"], "client")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        client = await folder_service.get_client(session, caller.principal, client_id)
        return await listing_page(request, session, caller, client=client, folder=None)


@page
async def folder_page(request: Request) -> Response:
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        folder = await folder_service.get_folder(session, caller.principal, folder_id)
        client = await session.get_one(Client, folder.client_id)
        return await listing_page(request, session, caller, client=client, folder=folder)


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
        return await listing_page(
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
        *browse_manage.routes(),
    ]


__all__ = ["routes"]
