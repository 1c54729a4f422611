"""Renaming and moving: `PATCH /documents/{id}` and `PATCH /folders/{id}` (vault/filing.py);
and a path of folders made under a folder (`POST /folders/{id}/paths`), as a dropped folder's
empty subfolders are (vault/folder_paths.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import documents as doc_service
from vault import filing, folder_paths
from vault import folders as folder_service
from web.api.clients import document_summary, folder_json
from web.api.common import api_call, parse_id
from web.api.documents import document_json
from web.api.inputs import Body, Name, NotNull, parse_body


class DocumentChange(Body):
    """A new name, another folder of the same client, or both; a field left out is kept."""

    name: Annotated[Name | None, NotNull] = None
    folder_id: Annotated[str | None, NotNull] = None


class FolderChange(Body):
    """A new name, and/or `parent_id`: another folder of the same client, or null for the
    client's top level; a field left out is kept."""

    name: Annotated[Name | None, NotNull] = None
    parent_id: str | None = None


class FolderPath(Body):
    """Folder names separated by `/`, such as `2025/receipts`; each missing one is made."""

    path: Annotated[str, Field(min_length=1, max_length=folder_paths.MAX_PATH)]


async def make_folder_path(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        folder_id = parse_id(request.path_params["folder_id"], "folder")
        body = await parse_body(request, FolderPath)
        made = await folder_paths.ensure_path(
            call.session, call.principal, call.audit, folder_id=folder_id, folder_path=body.path
        )
        folder = await folder_service.get_folder(call.session, call.principal, made)
        return JSONResponse(folder_json(folder))


async def update_document(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        body = await parse_body(request, DocumentChange)
        document = await filing.change_document(
            call.session,
            call.principal,
            call.audit,
            document_id,
            name=body.name,
            folder_id=parse_id(body.folder_id, "folder") if body.folder_id else None,
        )
        versions = list(await doc_service.versions(call.session, document.id))
        await doc_service.record_view(call.session, call.audit, document)
        return JSONResponse(document_json(document, versions))


async def update_folder(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        folder_id = parse_id(request.path_params["folder_id"], "folder")
        body = await parse_body(request, FolderChange)
        parent: uuid.UUID | filing.Keep | None = filing.KEEP
        if "parent_id" in body.model_fields_set:
            parent = parse_id(body.parent_id, "folder") if body.parent_id else None
        folder = await filing.change_folder(
            call.session,
            call.principal,
            call.audit,
            folder_id,
            name=body.name,
            parent_id=parent,
        )
        folders, documents = await folder_service.children(
            call.session, client_id=folder.client_id, folder_id=folder.id
        )
        await folder_service.record_listed(call.session, call.audit, folder.client_id, folder.id)
        answer = folder_json(folder)
        answer["folders"] = [folder_json(f) for f in folders]
        answer["documents"] = [document_summary(d) for d in documents]
        return JSONResponse(answer)
