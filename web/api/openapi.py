"""The OpenAPI 3.1 description of API v1, kept beside the routes it describes.

A test checks that every API route appears here and nothing else does.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _op(
    summary: str, ok: str = "200", *, body: dict[str, Any] | None = None, **params: str
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: {"description": "OK"}, "401": _PROBLEM, "404": _PROBLEM},
    }
    if params:
        operation["parameters"] = [
            {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}
            for name, where in params.items()
        ]
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def _json(*required: str, **props: str) -> dict[str, Any]:
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "required": list(required),
                "properties": {k: {"type": v} for k, v in props.items()},
            }
        }
    }


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ClientVault API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem details",
                "content": {"application/problem+json": {"schema": {"type": "object"}}},
            }
        },
    },
    "paths": {
        "/openapi.json": {"get": {**_op("This document"), "security": []}},
        "/me": {"get": _op("The caller")},
        "/clients": {
            "get": _op("Clients the caller may see"),
            "post": _op("Create a client (staff, admin)", "201", body=_json("name", name="string")),
        },
        "/clients/{client_id}/folders": {"get": _op("A client's root folders", client_id="path")},
        "/folders": {
            "post": _op(
                "Create a folder",
                "201",
                body=_json(
                    "client_id", "name", client_id="string", parent_id="string", name="string"
                ),
            )
        },
        "/folders/{folder_id}": {
            "get": _op("A folder with its sub-folders and documents", folder_id="path")
        },
        "/folders/{folder_id}/files/{name}": {
            "put": _op(
                "One-shot streaming upload: 201 new document, 200 new version",
                "201",
                body={
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                folder_id="path",
                name="path",
            )
        },
        "/documents/{document_id}": {
            "get": _op("A document and its versions", document_id="path"),
            "delete": _op("Move to trash", "204", document_id="path"),
        },
        "/documents/{document_id}/content": {
            "get": _op(
                "The bytes; honours Range, If-Range, If-None-Match",
                document_id="path",
                version="query",
            )
        },
        "/audit": {
            "get": _op(
                "Audit events, newest first (auditor, admin)",
                client_id="query",
                actor="query",
                action="query",
                document_id="query",
                since="query",
                until="query",
                limit="query",
                cursor="query",
            )
        },
        "/audit/export": {
            "get": _op(
                "Streamed export, itself audited",
                format="query",
                client_id="query",
                actor="query",
                action="query",
                document_id="query",
                since="query",
                until="query",
            )
        },
        "/audit/verify": {"get": _op("Check the hash chain end to end")},
    },
}


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(SPEC)
