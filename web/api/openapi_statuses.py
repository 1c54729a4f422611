"""The statuses an operation answers beyond those of its shape (`openapi_operations`), by
operationId: what its handler and the domain calls it makes can raise (web/errors.py maps
ConflictError and HeldError to 409, QuotaExceededError and TooLargeError to 413,
IncompleteUploadError to 400, PermissionDeniedError to 403)."""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRA_RESPONSES", "EXTRA_STATUSES", "PROBLEM_TITLES"]

PROBLEM_TITLES = {
    400: "Bad request",
    401: "Unauthorized: no or a bad session or token (WWW-Authenticate: Bearer)",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed: Tus-Resumable is not 1.0.0",
    413: "Content too large, or the client's quota exceeded",
    415: "Unsupported media type",
    422: "A field or parameter refused (`field` names it)",
    429: "Too many attempts: locked for a while (Retry-After)",
    460: "Checksum Mismatch: nothing of the body stored",
    503: "Database or object store unavailable (Retry-After)",
    507: "Insufficient storage",
}

_TUS = {400, 412}
# A tus request that may carry upload bytes: checked by Upload-Checksum (tus 1.0.0
# §Checksum, 460 on a mismatch), at least one whole 64 KiB segment unless it ends the
# upload (400); a finished upload may hit the quota or a conflict (413, 409).
_TUS_BODY = _TUS | {409, 413, 415, 460, 507}
# The public ways in refuse a cross-site request (403) and answer their body on its merits.
_WAY_IN = {403}

EXTRA_STATUSES: dict[str, set[int]] = {
    "create_client": {409},
    "create_folder": {404, 409},
    "put_file": {400, 409, 413, 422, 507},
    "delete_document": {409},
    "update_document": {409},
    "update_folder": {409},
    "make_folder_path": {400, 409},
    "restore_version": {409, 413, 507},
    "trash_restore": {409, 413},
    "create_document_link": {409},
    "create_folder_link": {409},
    "uploads_options": set(),
    "uploads_create": _TUS_BODY | {404, 422},
    "uploads_head": _TUS,
    "uploads_patch": _TUS_BODY,
    "uploads_delete": _TUS,
    "create_request": {409},
    "submit_item": {409},
    "answer_item": {409},
    "close_request": {409},
    "edit_request": {409},
    "remind_request": {409},
    "create_request_template": {409},
    "update_request_template": {409},
    "list_links": {404, 422},
    "place_hold": {409},
    "release_hold": {409},
    "set_quota": {409},
    "inclusion": {400},
    "consistency": {400},
    "checkpoint": {404},
    "create_session": _WAY_IN | {401, 429},
    "second_factor": {401, 409, 429},
    "request_reset": _WAY_IN,
    "complete_reset": _WAY_IN,
    "accept_invitation": _WAY_IN,
    "invite": {404, 409},
    "get_session": {404},
    "delete_session": {404},
    "change_password": {409},
    "begin_totp": {409},
    "confirm_totp": {409, 429},
    "regenerate_recovery_codes": {409},
    "create_token": {409},
    "update_user": {409},
    "reset_user_totp": {409},
    "retry_notification": {409},
}

_CONTENT_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "The version's strong validator"},
    "Accept-Ranges": {"schema": {"const": "bytes"}},
}

# Answers of success, or not problem+json, besides the operation's first success status.
EXTRA_RESPONSES: dict[str, dict[str, Any]] = {
    "put_file": {
        "200": {"description": "A new version of the document of that name"},
        "202": {
            "description": "Held in quarantine until scanned: "
            '{document_id, version: null, scan: "pending"}'
        },
    },
    "get_content": {
        "206": {
            "description": "The requested range",
            "headers": {
                **_CONTENT_HEADERS,
                "Content-Range": {"schema": {"type": "string"}, "required": True},
            },
        },
        "304": {"description": "If-None-Match matched", "headers": _CONTENT_HEADERS},
        "416": {
            "description": "Range Not Satisfiable; Content-Range: bytes */<size>",
            "headers": {"Content-Range": {"schema": {"type": "string"}, "required": True}},
        },
    },
}
