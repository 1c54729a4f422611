"""Share and upload-request links: `/documents/{id}/links`, `/folders/{id}/links`, `/links`,
and a client's link policy at `/clients/{id}/link-policy`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vault import link_policy
from vault import links as link_service
from vault.errors import InvalidLinkPolicyError
from vault.folders import get_client
from vault.links import Link, LinkKind, LinkSpec
from web.api.common import api_call, iso, json_body, parse_id
from web.context import services
from web.errors import ProblemError
from web.numbers import INT32_MAX
from web.services import Services
from web.settings import Settings

CREATE_FIELDS = frozenset(
    {
        "kind",
        "expires_at",
        "password",
        "recipient_email",
        "max_downloads",
        "max_file_bytes",
        "max_files",
        "max_total_bytes",
        "version",
    }
)


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


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, f"{name} must be a whole number")
    return value


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(name, f"{name} must be a string")
    return value


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


def parse_spec(data: dict[str, Any]) -> LinkSpec:
    unknown = sorted(set(data) - CREATE_FIELDS)
    if unknown:
        raise _invalid(unknown[0], f"unknown field: {unknown[0]}")
    kind_text = _optional_str(data, "kind") or "download"
    try:
        kind = LinkKind(kind_text)
    except ValueError:
        raise _invalid("kind", "kind is download or upload") from None
    expires = _optional_str(data, "expires_at")
    if expires is None:
        raise _invalid("expires_at", "expires_at is required")
    return LinkSpec(
        kind=kind,
        expires_at=parse_expiry(expires),
        password=_optional_str(data, "password"),
        recipient_email=_optional_str(data, "recipient_email"),
        max_downloads=_optional_int(data, "max_downloads"),
        max_file_bytes=_optional_int(data, "max_file_bytes"),
        max_files=_optional_int(data, "max_files"),
        max_total_bytes=_optional_int(data, "max_total_bytes"),
        version=_version(data),
    )


def _version(data: dict[str, Any]) -> int | None:
    number = _optional_int(data, "version")
    if number is not None and not 1 <= number <= INT32_MAX:
        raise _invalid("version", "no such version")
    return number


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
        spec = parse_spec(await json_body(request))
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
        spec = parse_spec(await json_body(request))
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
