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
