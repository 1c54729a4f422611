"""The trash: `GET /trash` and `POST /documents/{document_id}/restore` (staff, admin)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import trash as trash_service
from web.api.common import api_call, iso, parse_id


def trashed_json(item: trash_service.TrashedDocument) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "name": item.name,
        "client_id": str(item.client_id),
        "client_name": item.client_name,
        "folder_id": str(item.folder_id),
        "folder_path": item.folder_path,
        "size": item.size,
        "deleted_at": iso(item.deleted_at),
        "deleted_by": item.deleted_by,
    }


async def list_trash(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        found = await trash_service.list_trash(call.session, call.principal, call.audit)
        return JSONResponse({"documents": [trashed_json(item) for item in found]})


async def restore(request: Request) -> JSONResponse:
    """409 if a live document took the name meanwhile: nothing is renamed silently."""
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        document = await trash_service.restore(
            call.session, call.principal, call.audit, document_id
        )
        return JSONResponse(
            {
                "id": str(document.id),
                "name": document.name,
                "folder_id": str(document.folder_id),
                "version": document.current_version,
            }
        )
