"""Share and upload-request links: `/documents/{id}/links`, `/folders/{id}/links`, `/links`,
and a client's link policy at `/clients/{id}/link-policy`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vault import link_policy
from vault import links as link_service
from vault.errors import InvalidLinkPolicyError
from vault.folders import get_client
from vault.links import Link, LinkKind, LinkSpec
from web.api.common import api_call, iso, json_body, parse_id
from web.api.inputs import Body, OptionalText, parse_body
from web.context import services
from web.errors import ProblemError
from web.numbers import INT32_MAX
from web.services import Services
from web.settings import Settings


def link_defaults(settings: Settings) -> link_policy.LinkDefaults:
    """The firm-wide link policy from `[links]`."""
    links = settings.links
    return link_policy.LinkDefaults(
        allowed=links.enabled,
        creators=link_policy.Creators(links.creators),
        max_expiry_days=links.max_expiry_days,
        require_password=links.require_password,
        require_recipient=links.require_recipient,
        scan_drops=links.scan_drops,
    )


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.server.public_url}/s/{token}"


def link_json(link: Link, now: datetime | None = None) -> dict[str, Any]:
    """A link as the API shows it: everything but its token, which is never stored."""
    return {
        "id": str(link.id),
        "kind": str(link.kind),
        "state": str(link_service.state(link, now or datetime.now(UTC))),
        "client_id": str(link.client_id),
        "document_id": str(link.document_id) if link.document_id else None,
        "version": link.version,
        "folder_id": str(link.folder_id) if link.folder_id else None,
        "expires_at": iso(link_service.aware(link.expires_at)),
        "has_password": link.password_hash is not None,
        "recipient_email": link.recipient_email,
        "max_downloads": link.max_downloads,
        "downloads": link.downloads,
        "max_file_bytes": link.max_file_bytes,
        "max_files": link.max_files,
        "max_total_bytes": link.max_total_bytes,
        "files_received": link.files_received,
        "bytes_received": link.bytes_received,
        "created_by": str(link.created_by) if link.created_by else None,
        "created_at": iso(link_service.aware(link.created_at)),
        "revoked_at": iso(None if link.revoked_at is None else link_service.aware(link.revoked_at)),
    }


def _invalid(name: str, detail: str) -> ProblemError:
    return ProblemError(422, "Invalid request", detail, field=name)


def _default_kind(value: object) -> object:
    return "download" if value is None or value == "" else value


def parse_expiry(value: str) -> datetime:
    """An RFC 3339 date-time (a zone is required), or a date meaning its end in UTC."""
    try:
        moment = datetime.fromisoformat(value)
        if len(value) == 10:
            return moment.replace(tzinfo=UTC) + timedelta(days=1) - timedelta(seconds=1)
        if moment.tzinfo is None:
            raise _invalid("expires_at", "expires_at needs a time zone, e.g. Z")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: the day after 9999-12-31, or a zone pushing year 1 out of range.
        raise _invalid("expires_at", "expires_at must be an RFC 3339 date-time") from None


class NewLink(Body):
    # A misspelt limit must not silently make a link without it.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    kind: Annotated[Literal["download", "upload"], BeforeValidator(_default_kind)] = "download"
    expires_at: Annotated[
        str,
        Field(
            min_length=1,
            description="an RFC 3339 date-time with its zone, or a date meaning its end in UTC;"
            " at most the client's max_expiry_days ahead",
        ),
    ]
    password: OptionalText = None
    recipient_email: OptionalText = None
    max_downloads: int | None = None
    max_file_bytes: int | None = None
    max_files: int | None = None
    max_total_bytes: int | None = None
    version: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None


def parse_spec(body: NewLink) -> LinkSpec:
    return LinkSpec(
        kind=LinkKind(body.kind),
        expires_at=parse_expiry(body.expires_at),
        password=body.password,
        recipient_email=body.recipient_email,
        max_downloads=body.max_downloads,
        max_file_bytes=body.max_file_bytes,
        max_files=body.max_files,
        max_total_bytes=body.max_total_bytes,
        version=body.version,
    )


def _created(svc: Services, link: Link, token: str) -> JSONResponse:
    # The token is in this answer and nowhere else: it cannot be shown again.
    body = {**link_json(link), "url": link_url(svc.settings, token)}
    return JSONResponse(
        body,
        status_code=201,
        headers={"Location": f"/api/v1/links/{link.id}", "Cache-Control": "no-store"},
    )


async def create_document_link(request: Request) -> JSONResponse:
    svc = services(request)
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        spec = parse_spec(await parse_body(request, NewLink))
        link, token = await link_service.create_for_document(
            call.session,
            call.principal,
            call.audit,
            defaults=link_defaults(svc.settings),
            hasher=svc.password_hasher,
            document_id=document_id,
            spec=spec,
            max_file_bytes=svc.max_upload_size,
        )
    return _created(svc, link, token)


async def create_folder_link(request: Request) -> JSONResponse:
    svc = services(request)
    async with api_call(request) as call:
        folder_id = parse_id(request.path_params["folder_id"], "folder")
        spec = parse_spec(await parse_body(request, NewLink))
        link, token = await link_service.create_for_folder(
            call.session,
            call.principal,
            call.audit,
            defaults=link_defaults(svc.settings),
            hasher=svc.password_hasher,
            folder_id=folder_id,
            spec=spec,
            max_file_bytes=svc.max_upload_size,
        )
    return _created(svc, link, token)


def _query_id(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    return None if raw is None else parse_id(raw, name.removesuffix("_id"))


async def list_links(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        document_id = _query_id(request, "document_id")
        folder_id = _query_id(request, "folder_id")
        if document_id is not None and folder_id is not None:
            raise _invalid("folder_id", "give document_id or folder_id, not both")
        found = await link_service.list_audited(
            call.session, call.principal, call.audit, document_id=document_id, folder_id=folder_id
        )
        now = datetime.now(UTC)
        return JSONResponse({"links": [link_json(link, now) for link in found]})


async def revoke_link(request: Request) -> Response:
    async with api_call(request) as call:
        link_id = parse_id(request.path_params["link_id"], "link")
        await link_service.revoke(call.session, call.principal, call.audit, link_id)
    return Response(status_code=204)


def _policy_json(
    defaults: link_policy.LinkDefaults, own: dict[str, Any], effective: link_policy.LinkDefaults
) -> dict[str, Any]:
    return {"defaults": defaults.as_json(), "overrides": own, "effective": effective.as_json()}


async def get_link_policy(request: Request) -> JSONResponse:
    """A client's link policy: the firm's defaults, its overrides and the result."""
    svc = services(request)
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        await get_client(call.session, call.principal, client_id)
        defaults = link_defaults(svc.settings)
        own, effective = await link_policy.view(call.session, call.audit, defaults, client_id)
        return JSONResponse(_policy_json(defaults, own, effective))


async def put_link_policy(request: Request) -> JSONResponse:
    """Change some of a client's overrides (admin); null returns one to the firm's default."""
    svc = services(request)
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        # A client the caller cannot see is missing (404) before anything is refused (403).
        await get_client(call.session, call.principal, client_id)
        changes = await json_body(request)
        try:
            own = await link_policy.set_overrides(
                call.session, call.principal, call.audit, client_id, changes
            )
        except InvalidLinkPolicyError as exc:
            raise _invalid("policy", str(exc)) from None
        defaults = link_defaults(svc.settings)
        effective = await link_policy.effective(call.session, defaults, client_id)
        return JSONResponse(_policy_json(defaults, own, effective))
