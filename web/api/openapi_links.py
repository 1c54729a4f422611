"""The OpenAPI paths of share and upload-request links (merged into `openapi.SPEC`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from web.api.links import NewLink
from web.api.openapi_models import json_body

_LINK_BODY = json_body(NewLink)


class LinkPolicyChange(BaseModel):
    """PUT /clients/{client_id}/link-policy: the overrides to change; null returns one to
    the firm's default (the route checks them in `vault.link_policy.set_overrides`)."""

    allowed: bool | None = None
    creators: Literal["staff", "staff_and_clients"] | None = None
    max_expiry_days: int | None = None
    require_password: bool | None = None
    require_recipient: bool | None = None
    scan_drops: bool | None = None


_POLICY_BODY = json_body(LinkPolicyChange)

_CREATED = (
    ": 201 {id, url, kind, state, expires_at, ...}; the url carries the link's token and is "
    "shown only in this answer; 422 names a bad field (`field`), 403 when the client's link "
    "policy does not let the caller"
)


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The link paths, described with `openapi._op`."""
    return {
        "/documents/{document_id}/links": {
            "post": op(
                "Create a share link to the document (latest or a pinned version)" + _CREATED,
                "201",
                body=_LINK_BODY,
            )
        },
        "/folders/{folder_id}/links": {
            "post": op(
                "Create a share link to the folder, or (kind upload) an upload-request link "
                "into it" + _CREATED,
                "201",
                body=_LINK_BODY,
            )
        },
        "/links": {
            "get": op(
                "Links to a document or a folder (staff see all, others their own), or "
                "without a filter the caller's own links; never their tokens",
                document_id="query",
                folder_id="query",
            )
        },
        "/links/{link_id}": {
            "delete": op(
                "Revoke a link at once (staff of its client, admin, or its creator)",
                "204",
            )
        },
        "/clients/{client_id}/link-policy": {
            "get": op(
                "The client's link policy: the firm's defaults, the client's overrides, and "
                "the effective policy",
            ),
            "put": op(
                "Override the firm's link policy for the client (admin, audited); null "
                "returns a setting to the firm's default",
                body=_POLICY_BODY,
            ),
        },
    }


# The visitor's side, served at /s/… (not under /api/v1): each path names its own server.
_ROOT = [{"url": "/"}]
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_GONE = {
    "description": "The same page for every link that is not usable: unknown, expired, "
    "revoked, used up, switched off, its target or its creator's access gone",
    "content": _HTML,
}
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "the link's token, from its URL; never logged",
    "schema": {"type": "string"},
}
_GRANT = {
    "name": "cv_link",
    "in": "cookie",
    "required": False,
    "description": "the grant set when the visitor gave the link's password or emailed "
    "code; bound to this one link, sent only with its own addresses (path /s/{token})",
    "schema": {"type": "string"},
}
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _header(name: str, description: str = "", *, required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"const": "1.0.0"} if name == "Tus-Resumable" else {"type": "string"}
    found = {"name": name, "in": "header", "required": required, "schema": schema}
    return found | ({"description": description} if description else {})


def _public(op_id: str, summary: str, responses: dict[str, Any], *params: Any) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "security": [],
        "parameters": [_TOKEN, *params],
        "responses": responses,
    }


def _tus_answer(description: str, **headers: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "Tus-Resumable": {"required": True, "schema": {"const": "1.0.0"}},
            **{
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in headers.items()
            },
        },
    }


_TUS_ERRORS = {
    status: {**_PROBLEM, "description": text}
    for status, text in {
        "400": "Bad request (a header or the metadata is missing or malformed)",
        "404": "The link is not usable, or the upload is not one of its own",
        "412": "Tus-Resumable is not 1.0.0",
        "413": "Larger than max_file_bytes or the portal allows, or the link's files or "
        "bytes are used up (audited as link.refused, reason too_large or limit)",
        "422": "The visitor's name or email, or the file name, is refused (audited as "
        "link.refused, reason bad_metadata or bad_name)",
    }.items()
}
_STREAM = {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def public_paths() -> dict[str, Any]:
    """`/s/{token}`, its content and its tus uploads, as a visitor without an account uses
    them (docs/links.md, docs/drops.md)."""
    return {
        "/s/{token}": {
            "servers": _ROOT,
            "get": _public(
                "link_page",
                "The link's page (HTML, in the browser's language): the firm, what is "
                "shared, its size and expiry; a folder link's listing; an upload link's drop "
                "page. A link with a password or recipient email shows that form first",
                {"200": {"description": "The page", "content": _HTML}, "404": _GONE},
                {"name": "folder", "in": "query", "required": False, "schema": {"type": "string"}},
                _GRANT,
            ),
        },
        "/s/{token}/content": {
            "servers": _ROOT,
            "get": _public(
                "link_content",
                "A document link's bytes (its pinned or latest version), always as an "
                "attachment; Range, If-Range and If-None-Match as for "
                "/api/v1/documents/{document_id}/content. Each answer with bytes counts one "
                "download against max_downloads. Until the grant cookie is there (password "
                "or emailed code), a 303 to the link's page",
                {
                    "200": {
                        "description": "The whole file",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "206": {"description": "The range asked for"},
                    "303": {"description": "The link still needs its password or code"},
                    "304": {"description": "Not modified (If-None-Match)"},
                    "404": _GONE,
                    "416": {"description": "The range is not satisfiable"},
                },
                _header("Range"),
                _header("If-Range"),
                _header("If-None-Match"),
                _GRANT,
            ),
        },
        "/s/{token}/uploads": {
            "servers": _ROOT,
            "options": _public(
                "link_uploads_options",
                "tus discovery, as OPTIONS /api/v1/uploads",
                {
                    "204": _tus_answer(
                        "tus discovery",
                        **{"Tus-Version": "1.0.0", "Tus-Max-Size": "the largest upload"},
                    )
                },
            ),
            "post": {
                **_public(
                    "link_uploads_create",
                    "tus 1.0.0 creation through an upload link: Upload-Length and "
                    "Upload-Metadata with filename, uploader_name and uploader_email (base64; "
                    "no folder_id: the link decides). The link's limits are checked before any "
                    "byte. The file always becomes a new document (under a free name when "
                    "its own is taken); no answer names it",
                    {
                        "201": _tus_answer(
                            "Created",
                            Location="/s/{token}/uploads/{upload_id}",
                            **{"Upload-Offset": "0", "Upload-Expires": "RFC 9110 date"},
                        ),
                        **_TUS_ERRORS,
                    },
                    _header("Tus-Resumable", required=True),
                    _header("Upload-Length", required=True),
                    _header(
                        "Upload-Metadata",
                        "filename, uploader_name, uploader_email (tus key-value pairs)",
                        required=True,
                    ),
                    _header("Upload-Checksum"),
                    _GRANT,
                ),
                "requestBody": {"required": False, "content": _STREAM},
            },
        },
        "/s/{token}/uploads/{upload_id}": {
            "servers": _ROOT,
            "head": _public(
                "link_uploads_head",
                "The upload's offset, to resume; only through the link that created it",
                {
                    "200": _tus_answer("Where to resume", **{"Upload-Offset": "bytes stored"}),
                    **_TUS_ERRORS,
                },
                _UPLOAD_ID,
                _header("Tus-Resumable", required=True),
                _GRANT,
            ),
            "patch": {
                **_public(
                    "link_uploads_patch",
                    "Append bytes at Upload-Offset, as PATCH /api/v1/uploads/{upload_id}; no "
                    "Document-* headers in the answer",
                    {
                        "204": _tus_answer("Stored", **{"Upload-Offset": "bytes stored"}),
                        **_TUS_ERRORS,
                    },
                    _UPLOAD_ID,
                    _header("Tus-Resumable", required=True),
                    _header("Upload-Offset", required=True),
                    _header("Upload-Checksum"),
                    _GRANT,
                ),
                "requestBody": {"required": True, "content": _STREAM},
            },
            "delete": _public(
                "link_uploads_delete",
                "Terminate the upload",
                {"204": _tus_answer("Terminated"), **_TUS_ERRORS},
                _UPLOAD_ID,
                _header("Tus-Resumable", required=True),
                _GRANT,
            ),
        },
    }
