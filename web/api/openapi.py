"""The OpenAPI 3.1 description of API v1, kept beside the routes it describes.

Written here: each operation's summary, its success status, query parameters and body
model. Completed from the route table and the handlers (`document`): operationIds, path
parameters, security, error statuses (`openapi_operations`), response bodies and headers
(`openapi_responses`). A test checks that every API route appears here and nothing else
does; tests/web/test_api_schema.py that the server answers as the document says. The
visitor's side of links (`/s/{token}`…) is described too, each path naming its own server
(`openapi_links.public_paths`), since it is served outside /api/v1.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from web.api import openapi_links
from web.api.account_inputs import (
    Invitation,
    NewPassword,
    NewToken,
    Password,
    TotpConfirmation,
    UserChange,
)
from web.api.clients import NewClient, NewFolder
from web.api.filing import DocumentChange, FolderChange, FolderPath
from web.api.notifications import Preference, Profile
from web.api.openapi_audit import audit_paths
from web.api.openapi_models import MODEL_SCHEMAS, json_body
from web.api.openapi_operations import complete
from web.api.openapi_records import records_paths
from web.api.openapi_responses import describe_answers
from web.api.openapi_schemas import PROBLEM, SCHEMAS
from web.api.openapi_statuses import EXTRA_RESPONSES
from web.api.openapi_templates import template_paths
from web.api.requests import Answer, NewRequest, RequestChange, Submission
from web.api.signin import Credentials, LinkStep, ResetRequest, SecondFactor


def _op(
    summary: str,
    ok: str = "200",
    *,
    body: dict[str, Any] | None = None,
    headers: tuple[str, ...] = (),
    **params: str,
) -> dict[str, Any]:
    """An operation with its success answer; `openapi_operations.complete` adds its id,
    security and error answers."""
    operation: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "OK"}}}
    params |= dict.fromkeys(headers, "header")
    if params:
        operation["parameters"] = [
            {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}
            for name, where in params.items()
        ]
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


_TUS_BODY = {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _tus(
    operation: dict[str, Any], *headers: str, optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A tus operation: the request headers it requires, Tus-Resumable first, then those
    it may carry."""
    operation.setdefault("parameters", []).extend(
        {
            "name": name,
            "in": "header",
            "required": required,
            "schema": {"const": "1.0.0"} if name == "Tus-Resumable" else {"type": "string"},
        }
        for name, required in [
            *((name, True) for name in ("Tus-Resumable", *headers)),
            *((name, False) for name in optional),
        ]
    )
    return operation


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ClientVault API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}, {"session": []}],
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            # Browsers: the session cookie, plus X-CSRF-Token on every state-changing call.
            "session": {"type": "apiKey", "in": "cookie", "name": "cv_session"},
        },
        "schemas": SCHEMAS,
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem details",
                "content": {"application/problem+json": {"schema": PROBLEM}},
            }
        },
    },
    "paths": {
        "/openapi.json": {"get": {**_op("This document"), "security": []}},
        "/me": {"get": _op("The caller")},
        "/clients": {
            "get": _op("Clients the caller may see"),
            "post": _op("Create a client (staff, admin)", "201", body=json_body(NewClient)),
        },
        "/clients/{client_id}/folders": {"get": _op("A client's root folders")},
        "/folders": {
            "post": _op(
                "Create a folder",
                "201",
                body=json_body(NewFolder),
            )
        },
        "/folders/{folder_id}": {
            "get": _op("A folder with its sub-folders and documents"),
            "patch": _op(
                "Rename a folder and/or move it (`parent_id`: another folder of the same "
                "client, null for its top level; left out, it stays); answers as GET. 409 "
                "when the name is taken there, 422 when moved into itself or its own sub-folder",
                body=json_body(FolderChange),
            ),
        },
        "/folders/{folder_id}/paths": {
            "post": _op(
                "Make the folders of a path (`2025/receipts`) under this folder, each missing "
                "one created as by POST /folders (a dropped folder's empty subfolders); "
                "answers the innermost folder. 400 for a refused path or name",
                body=json_body(FolderPath),
            )
        },
        "/folders/{folder_id}/files/{name}": {
            "put": _op(
                "One-shot streaming upload: 201 new document, 200 new version, 202 "
                '{document_id, version: null, scan: "pending"} when held in quarantine until '
                "scanned ([scan].all_uploads); staff may add `message` (up to 2000 "
                "characters), shown in the notification email",
                "201",
                body={
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                message="query",
            )
        },
        "/documents/{document_id}": {
            "get": _op("A document and its versions"),
            "delete": _op("Move to trash", "204"),
            "patch": _op(
                "Rename a document and/or move it to another folder of the same client; "
                "versions, receipts and links keep pointing at it; answers as GET. 409 when "
                "the name is taken in the target folder",
                body=json_body(DocumentChange),
            ),
        },
        "/documents/{document_id}/content": {
            "get": _op(
                "The bytes; honours Range, If-Range, If-None-Match; `disposition=inline` shows "
                "PDF, PNG, JPEG, GIF, WebP and plain text in the browser (sandboxed), any "
                "other type still downloads",
                version="query",
                disposition="query",
                headers=("Range", "If-Range", "If-None-Match"),
            )
        },
        "/documents/{document_id}/versions/{number}/restore": {
            "post": _op(
                "Restore version `number` as a new version with the same bytes; "
                "`{document_id, version, restored_from}`",
                "201",
            )
        },
        "/documents/{document_id}/receipts": {
            "get": _op(
                "Delivery receipts (staff, admin): per version, which client members "
                "downloaded it in full and when, and who has not yet",
            )
        },
        "/documents/{document_id}/restore": {
            "post": _op(
                "Restore a document from the trash (staff, admin); 409 if a live document "
                "now has its name",
            )
        },
        "/trash": {"get": _op("Trashed documents of the clients the caller looks after")},
        # tus 1.0.0 (docs/uploads.md); every request but OPTIONS sends Tus-Resumable: 1.0.0.
        "/uploads": {
            "options": {
                **_op(
                    "tus discovery: Tus-Version, Tus-Extension (creation, "
                    "creation-with-upload, termination, expiration, checksum), Tus-Max-Size, "
                    "Tus-Checksum-Algorithm (sha1, sha256, md5), ClientVault-Chunk-Size",
                    "204",
                ),
                "security": [],
            },
            "post": _tus(
                (
                    {
                        **_op(
                            "Create a resumable upload: Upload-Length, Upload-Metadata "
                            "(filename, folder_id); 201 with Location, Upload-Offset and "
                            "Upload-Expires. With creation-with-upload the body carries the "
                            "first bytes, stored as a PATCH at offset 0 would store them",
                            "201",
                        ),
                        "requestBody": {"required": False, "content": _TUS_BODY},
                    }
                ),
                "Upload-Length",
                "Upload-Metadata",
                optional=("Upload-Checksum",),
            ),
        },
        "/uploads/{upload_id}": {
            "head": _tus(
                _op(
                    "Upload-Offset (a 64 KiB segment boundary), Upload-Length, "
                    "Upload-Expires; "
                    "Document-Id and Document-Version once complete (Document-Scan: pending "
                    "instead of Document-Version while held in quarantine)",
                )
            ),
            "patch": _tus(
                (
                    _op(
                        "Append bytes at Upload-Offset; every whole 64 KiB segment is "
                        "stored and the answer's Upload-Offset says how far; the final "
                        "request answers with Document-Id and Document-Version (Document-Scan: "
                        "pending instead while held in quarantine). Visitors of an upload link "
                        "use the same protocol at /s/{token}/uploads (metadata filename, "
                        "uploader_name, uploader_email; no folder_id, no Document-* answers)",
                        "204",
                        body=_TUS_BODY,
                    )
                ),
                "Upload-Offset",
                optional=("Upload-Checksum",),
            ),
            "delete": _tus(_op("Terminate the upload", "204")),
        },
        "/clients/{client_id}/requests": {
            "get": _op("A client's document requests, open ones first"),
            "post": _op(
                "Request documents from a client (staff, admin); `recurrence` is none, "
                "monthly, quarterly or yearly",
                "201",
                body=json_body(NewRequest),
            ),
        },
        "/requests": {
            "get": _op("Open document requests of the caller's clients, earliest due first")
        },
        "/requests/{request_id}": {
            "get": _op("A document request and its items"),
            "patch": _op(
                "Edit an open request (staff, admin): title, message, due date (today or "
                "later; its reminders start over), items added by name, renamed or removed "
                "by id (only items the client has not answered are removed)",
                body=json_body(RequestChange),
            ),
        },
        "/requests/{request_id}/reminders": {
            "post": _op(
                "Remind the client's people of an open request now (staff, admin); a second "
                "reminder within ten minutes is refused (409), so a double click emails once",
                "202",
            )
        },
        "/requests/{request_id}/items/{item_id}/submit": {
            "post": _op(
                "Submit an uploaded document of the same client for an item",
                body=json_body(Submission),
            )
        },
        "/requests/{request_id}/items/{item_id}/answer": {
            "post": _op(
                "Accept or reject a submitted item (staff, admin); rejecting needs a reason",
                body=json_body(Answer),
            )
        },
        "/requests/{request_id}/close": {
            "post": _op(
                "Close a request (staff, admin); a recurring one opens its next occurrence",
            )
        },
        **audit_paths(_op),
        "/session": {
            "post": {
                **_op(
                    "Sign in with email and password: {mfa_required, mfa_enrolment_required, "
                    "csrf_token}; 401 wrong, 429 locked",
                    body=json_body(Credentials),
                ),
                "security": [],
            },
            "get": _op("The browser session: stage and CSRF token"),
            "delete": _op("Sign out", "204"),
        },
        "/session/totp": {
            "post": _op(
                "Second factor: a TOTP or recovery code; the session id changes",
                body=json_body(SecondFactor),
            )
        },
        "/password-reset": {
            "post": {
                **_op(
                    "Email a reset link; the same 202 whether or not the account exists",
                    "202",
                    body=json_body(ResetRequest),
                ),
                "security": [],
            }
        },
        "/password-reset/confirm": {
            "post": {
                **_op(
                    "Set a new password through a reset link; ends every session",
                    body=json_body(LinkStep),
                ),
                "security": [],
            }
        },
        "/invitations": {
            "post": _op(
                "Invite a user by email (staff: client users of their clients; admin: anyone);"
                " staff are answered alike whatever exists, and only admins get `user_id`",
                "201",
                body=json_body(Invitation),
            )
        },
        "/invitations/accept": {
            "post": {
                **_op(
                    "Choose the first password through an invitation link",
                    body=json_body(LinkStep),
                ),
                "security": [],
            }
        },
        "/me/sessions": {
            "get": _op("The caller's live browser sessions"),
            "delete": _op("Sign out everywhere else"),
        },
        "/me/sessions/{handle}": {"delete": _op("End one session", "204")},
        "/me/password": {
            "post": _op(
                "Change the password (the current one is required); ends other sessions",
                "204",
                body=json_body(NewPassword),
            )
        },
        "/me/totp": {
            "get": _op("Whether TOTP is on, and recovery codes left"),
            "post": _op("Begin TOTP enrolment: secret, otpauth URI and QR code (SVG)"),
        },
        "/me/totp/confirm": {
            "post": _op(
                "Confirm enrolment with a first code: ten recovery codes, shown once; "
                "the password too from a signed-in session",
                body=json_body(TotpConfirmation),
            )
        },
        "/me/recovery-codes": {
            "post": _op(
                "Replace the recovery codes (password required)",
                body=json_body(Password),
            )
        },
        "/me/tokens": {
            "get": _op("The caller's personal access tokens"),
            "post": _op(
                "Create a token {name, scope, expires_in_days, password, code}: the password, "
                "and a TOTP or recovery code where TOTP is on; at most auth.token_max_days; "
                "the secret is shown once",
                "201",
                body=json_body(NewToken),
            ),
        },
        "/me/tokens/{token_id}": {"delete": _op("Revoke a token", "204")},
        "/users/{user_id}": {
            "patch": _op(
                "Change a user's role or active flag (admin); ends their sessions",
                body=json_body(UserChange),
            )
        },
        "/users/{user_id}/totp": {
            "delete": _op("Reset a user's second factor (admin, audited)", "204")
        },
        "/me/notifications": {
            "get": _op(
                "The caller's email settings: language, time zone, and per client the cadence "
                "(immediate, every_15_minutes, hourly, daily, off), daily hour and default"
            )
        },
        "/me/notifications/{client_id}": {
            "put": _op(
                "Set the caller's cadence for one client; `off` also drops pending changes",
                body=json_body(Preference),
            )
        },
        "/me/profile": {
            "put": _op(
                "Change the caller's display name, email language (en, fa, he) or IANA time "
                "zone; 422 names a bad field",
                body=json_body(Profile),
            )
        },
        "/notifications/failed": {
            "get": _op("Emails that could not be delivered, newest first (admin)", limit="query")
        },
        "/notifications/{notification_id}/retry": {
            "post": _op("Queue a failed email again (admin, audited)", "202")
        },
        **openapi_links.paths(_op),
        # The visitor's side of links, served outside /api/v1 (each path names its server).
        **openapi_links.public_paths(),
    },
}


# Records management (quotas, retention, legal holds) is described beside its routes.
SPEC["paths"].update(records_paths(_op))
SPEC["paths"].update(template_paths(_op))
SPEC["components"]["schemas"] = {**SCHEMAS, **MODEL_SCHEMAS}


@cache
def document() -> dict[str, Any]:
    """The document, completed from the route table on first use (the table imports this
    module, so it cannot be read at import time)."""
    from web.api import operations

    complete(SPEC["paths"], operations())
    for path in SPEC["paths"].values():
        for method, operation in path.items():
            if method != "servers":
                operation["responses"].update(EXTRA_RESPONSES.get(operation["operationId"], {}))
    describe_answers(SPEC["paths"])
    SPEC["components"]["schemas"] = {**SCHEMAS, **MODEL_SCHEMAS}
    return SPEC


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document())
