"""Filing from the pages: renaming and moving a document or a folder, and the folder listing's
selection (download as one zip, move, or trash several documents at once).

Forms posted with the session's CSRF token. A change is answered by a redirect with a notice;
a refusal the page can explain (a name taken, a naming rule, a folder moved into itself) by
the page again, with the reason beside the form it came from. A batch is one transaction:
all of the selected documents move (or go to the trash), or none does.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import documents as doc_service
from vault import filing
from vault import folders as folder_service
from vault.db import transaction
from vault.errors import InvalidInput, NameTakenError
from vault.models import Client
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.errors import ProblemError
from web.ids import parse_id
from web.pages.browse_listing import FilingError, filing_error, listing_page
from web.pages.browse_zip import members_of, stream_archive, zip_headers
from web.pages.common import FORM_TYPE, MAX_FORM_BODY, browser_caller, page, read_form, see_other
from web.pages.document import show_document

# A selection names each document once: room for a thousand, as a listing pages them.
MAX_SELECTION_FIELDS = 1000 + 4
ACTIONS = frozenset({"zip", "move", "trash"})


def _status(problem: FilingError) -> int:
    return 409 if problem.kind == "taken" else 422


async def _document_change(request: Request, *, form_name: str) -> Response:
    document_id = parse_id(request.path_params["document_id"], "document")
    form = await read_form(request)
    typed = form.get("name", "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        context = audit_context(request, caller.principal)
        try:
            async with session.begin_nested():
                if form_name == "rename":
                    await filing.change_document(
                        session, caller.principal, context, document_id, name=typed
                    )
                else:
                    target = parse_id(form.get("folder_id", ""), "folder")
                    await filing.change_document(
                        session, caller.principal, context, document_id, folder_id=target
                    )
        except (InvalidInput, NameTakenError) as exc:
            problem = filing_error(exc, form=form_name, typed=typed[:255])
            if problem is None:
                raise
            document = await doc_service.get_document(session, caller.principal, document_id)
            return await show_document(
                request, session, caller, document, status=_status(problem), problem=problem
            )
    done = "renamed" if form_name == "rename" else "moved"
    return see_other(f"/documents/{document_id}?done={done}")


@page
async def rename_document(request: Request) -> Response:
    return await _document_change(request, form_name="rename")


@page
async def move_document(request: Request) -> Response:
    return await _document_change(request, form_name="move")


async def _again(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    folder_id: uuid.UUID,
    problem: FilingError,
) -> Response:
    """The folder page again, saying why its form was refused."""
    folder = await folder_service.get_folder(session, caller.principal, folder_id)
    client = await session.get_one(Client, folder.client_id)
    return await listing_page(
        request,
        session,
        caller,
        client=client,
        folder=folder,
        status=_status(problem),
        problem=problem,
    )


async def _folder_change(request: Request, *, form_name: str) -> Response:
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    form = await read_form(request)
    typed = form.get("name", "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        context = audit_context(request, caller.principal)
        try:
            async with session.begin_nested():
                if form_name == "rename":
                    await filing.change_folder(
                        session, caller.principal, context, folder_id, name=typed
                    )
                else:
                    # The empty choice is the client's top level.
                    raw = form.get("parent_id", "")
                    parent = parse_id(raw, "folder") if raw else None
                    await filing.change_folder(
                        session, caller.principal, context, folder_id, parent_id=parent
                    )
        except (InvalidInput, NameTakenError) as exc:
            problem = filing_error(exc, form=form_name, typed=typed[:255])
            if problem is None:
                raise
            return await _again(request, session, caller, folder_id, problem)
    done = "renamed" if form_name == "rename" else "moved"
    return see_other(f"/folders/{folder_id}?done={done}")


@page
async def rename_folder(request: Request) -> Response:
    return await _folder_change(request, form_name="rename")


@page
async def move_folder(request: Request) -> Response:
    return await _folder_change(request, form_name="move")


async def read_selection(request: Request) -> tuple[dict[str, str], list[str]]:
    """The selection form: its single fields (the first of each) and every `document_id`,
    bounded in size like any form but with room for a long selection."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BODY:
            raise ProblemError(413, "Content too large")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if body and media_type != FORM_TYPE:
        raise ProblemError(415, "Unsupported media type")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_SELECTION_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise ProblemError(400, "Bad request") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields, [value for name, value in pairs if name == "document_id" and value]


@page
async def selection(request: Request) -> Response:
    svc = services(request)
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    fields, raw_ids = await read_selection(request)
    action = fields.get("action", "")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=fields.get(CSRF_FIELD, ""))
        principal, context = caller.principal, audit_context(request, caller.principal)
        if action not in ACTIONS:
            raise ProblemError(400, "Bad request")
        document_ids = [parse_id(raw, "document") for raw in raw_ids]
        if not document_ids:
            problem = FilingError("selection", "none-selected")
            return await _again(request, session, caller, folder_id, problem)
        if action == "zip":
            folder, entries = await filing.selected(session, principal, folder_id, document_ids)
            members = await members_of(session, svc, context, entries, archive_folder_id=folder.id)
            client_id, user_ref = folder.client_id, principal.user_ref
            headers = zip_headers(f"{folder.name}.zip")
        elif action == "trash":
            await folder_service.get_folder(session, principal, folder_id)
            trashed = await filing.trash_documents(session, principal, context, document_ids)
            return see_other(f"/folders/{folder_id}?done=trashed-many&n={len(trashed)}")
        else:
            await folder_service.get_folder(session, principal, folder_id)
            target = parse_id(fields.get("folder_id", ""), "folder")
            try:
                async with session.begin_nested():
                    moved = await filing.move_documents(
                        session, principal, context, document_ids, folder_id=target
                    )
            except (InvalidInput, NameTakenError) as exc:
                refused = filing_error(exc, form="selection")
                if refused is None:
                    raise
                return await _again(request, session, caller, folder_id, refused)
            return see_other(f"/folders/{folder_id}?done=moved-many&n={len(moved)}")
    return stream_archive(
        request, members, context=context, client_id=client_id, user_ref=user_ref, headers=headers
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/documents/{document_id}/rename", rename_document, methods=["POST"]),
        Route("/documents/{document_id}/move", move_document, methods=["POST"]),
        Route("/folders/{folder_id}/rename", rename_folder, methods=["POST"]),
        Route("/folders/{folder_id}/move", move_folder, methods=["POST"]),
        Route("/folders/{folder_id}/selection", selection, methods=["POST"]),
    ]


__all__ = ["routes"]
