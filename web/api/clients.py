"""Clients, folders and the caller: `/me`, `/clients`, `/folders`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import folders as folder_service
from vault.accounts import profiles
from vault.folders import DocumentSummary
from vault.models import Client, Folder
from web.api.common import api_call, iso, parse_id
from web.api.inputs import Body, Name, parse_body


def client_json(client: Client) -> dict[str, Any]:
    return {"id": str(client.id), "name": client.name, "created_at": iso(client.created_at)}


def folder_json(folder: Folder) -> dict[str, Any]:
    return {
        "id": str(folder.id),
        "name": folder.name,
        "client_id": str(folder.client_id),
        "parent_id": str(folder.parent_id) if folder.parent_id else None,
        "created_at": iso(folder.created_at),
    }


def document_summary(doc: DocumentSummary) -> dict[str, Any]:
    return {
        "id": doc.id,
        "name": doc.name,
        "version": doc.current_version,
        "updated_at": iso(doc.updated_at),
    }


async def me(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        await profiles.show_own(call.session, call.audit, call.user, part="profile")
        return JSONResponse(
            {
                "id": str(call.user.id),
                "email": call.user.email,
                "display_name": call.user.display_name,
                "role": call.principal.role.value,
                "client_ids": sorted(str(c) for c in call.principal.client_ids),
            }
        )


async def list_clients(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        clients = await folder_service.list_clients(
            call.session, call.principal, context=call.audit
        )
        return JSONResponse({"clients": [client_json(c) for c in clients]})


class NewClient(Body):
    name: Name


class NewFolder(Body):
    client_id: str
    parent_id: str | None = None
    name: Name


async def create_client(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        body = await parse_body(request, NewClient)
        client = await folder_service.create_client(
            call.session, call.principal, call.audit, body.name
        )
        return JSONResponse(client_json(client), status_code=201)


async def client_root(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        client = await folder_service.get_client(call.session, call.principal, client_id)
        folders, documents = await folder_service.children(
            call.session, client_id=client.id, folder_id=None
        )
        await folder_service.record_listed(call.session, call.audit, client.id)
        return JSONResponse(
            {
                "client_id": str(client.id),
                "folders": [folder_json(f) for f in folders],
                "documents": [document_summary(d) for d in documents],
            }
        )


async def create_folder(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        body = await parse_body(request, NewFolder)
        folder = await folder_service.create_folder(
            call.session,
            call.principal,
            call.audit,
            client_id=parse_id(body.client_id, "client"),
            parent_id=parse_id(body.parent_id, "folder") if body.parent_id else None,
            name=body.name,
        )
        return JSONResponse(folder_json(folder), status_code=201)


async def get_folder(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        folder_id = parse_id(request.path_params["folder_id"], "folder")
        folder = await folder_service.get_folder(call.session, call.principal, folder_id)
        folders, documents = await folder_service.children(
            call.session, client_id=folder.client_id, folder_id=folder.id
        )
        await folder_service.record_listed(call.session, call.audit, folder.client_id, folder.id)
        body = folder_json(folder)
        body["folders"] = [folder_json(f) for f in folders]
        body["documents"] = [document_summary(d) for d in documents]
        return JSONResponse(body)
