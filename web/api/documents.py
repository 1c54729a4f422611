"""Document routes: one-shot streaming upload, metadata, content with Range, trash."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from vault import audit, publishing, quarantine, quotas, receipts
from vault import documents as doc_service
from vault.crypto import blobs
from vault.db import transaction
from vault.errors import (
    IncompleteUploadError,
    PermissionDeniedError,
    TooLargeError,
)
from vault.models import Document, Role, Version
from vault.policy import Permission, require
from web import content
from web.api.common import api_call, iso, parse_id
from web.auth import deliberate
from web.context import services
from web.errors import ProblemError
from web.http import (
    content_disposition,
)
from web.numbers import INT32_MAX, parse_int
from web.services import Services

logger = logging.getLogger(__name__)

# Types a browser may show inline without running anything; all else downloads as bytes.
INLINE_SAFE = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
}
# Even a safe type is sandboxed: no scripts, no plugins, no same-origin access (ASVS 3.2.1).
# This replaces the app-wide CSP, so it repeats its frame-ancestors (no framing, no clickjacking).
DOWNLOAD_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
# What `?disposition=inline` shows in the browser: never SVG, HTML or XML (they run script).
PREVIEWABLE = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
)
# A preview may be framed by our own document page, and nothing else. The document is a
# sandbox with no script, object or connection of its own; images and text are shown by the
# browser itself, and the inline style is the one browsers put on their own image viewer.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
# Chromium refuses to start its PDF viewer in a sandboxed document ("This page has been
# blocked by Chrome"), so a PDF goes without `sandbox`. Its viewer runs PDF script (if any)
# in its own isolated engine, never in our origin, and no directive here lets the document
# fetch, frame or post anything.
PDF_PREVIEW_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def version_json(version: Version) -> dict[str, Any]:
    return {
        "number": version.number,
        "size": version.size,
        "sha256": version.sha256,
        "content_type": version.content_type,
        "created_at": iso(version.created_at),
        "uploaded_by": str(version.uploaded_by) if version.uploaded_by else None,
    }


def document_json(document: Document, versions: list[Version]) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "name": document.name,
        "folder_id": str(document.folder_id),
        "client_id": str(document.client_id),
        "version": document.current_version,
        "created_at": iso(document.created_at),
        "updated_at": iso(document.updated_at),
        "versions": [version_json(v) for v in versions],
    }


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    length = parse_int(raw.strip())
    if length is None:
        raise ProblemError(400, "Bad request", "Content-Length is not a number")
    return length


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        # Surfaces as an incomplete upload: the multipart upload is aborted, nothing recorded.
        raise IncompleteUploadError("the client went away before the body was complete") from None


async def put_file(request: Request) -> JSONResponse:
    svc = services(request)
    folder_id = parse_id(request.path_params["folder_id"], "folder")
    name = request.path_params["name"]
    length = _declared_length(request)
    if length is not None and length > svc.max_upload_size:
        raise ProblemError(413, "Content too large", f"the limit is {svc.max_upload_size} bytes")
    message = _publishing_message(request)
    default_quota = svc.settings.quotas.default_bytes
    async with api_call(request) as call:
        if message and call.principal.role not in (Role.STAFF, Role.ADMIN):
            raise PermissionDeniedError("only staff may add a publishing message")
        plan = await doc_service.prepare_upload(
            call.session, call.principal, svc.keyring, folder_id=folder_id, name=name
        )
        # Refused here, with the body still unread, when Content-Length does not fit.
        admission = await quotas.admit(call.session, plan.client_id, length, default=default_quota)
    try:
        blob = await blobs.write_encrypted(
            svc.store,
            plan.storage_key,
            _body(request),
            sealer=plan.sealer(),
            part_size=svc.part_size,
            concurrency=svc.settings.storage.concurrency,
            expected_size=length,
            max_size=admission.limit(svc.max_upload_size),
        )
    except TooLargeError:
        with anyio.CancelScope(shield=True):
            await quotas.release_in(svc.sessions, admission)
        if length is None and admission.limit(svc.max_upload_size) < svc.max_upload_size:
            raise admission.refusal() from None
        raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await quotas.release_in(svc.sessions, admission)
        raise
    try:
        async with api_call(request) as call:
            await quotas.settle(
                call.session, plan.client_id, admission, blob.plaintext_size, default=default_quota
            )
            committed = await quarantine.commit_or_hold(
                call.session,
                call.principal,
                call.audit,
                plan,
                blob,
                hold=svc.settings.scan.all_uploads,
                content_type=_content_type(request),
                details={"message": message} if message else None,
            )
            await quotas.note_usage(call.session, plan.client_id, default=default_quota)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await svc.store.delete(plan.storage_key)
            await quotas.release_in(svc.sessions, admission)
        raise
    if committed.held:
        # Stored, but no version until the scanner passes it (or staff release it).
        return JSONResponse(
            {"document_id": str(committed.document_id), "version": None, "scan": "pending"},
            status_code=202,
        )
    return JSONResponse(
        {"document_id": str(committed.document_id), "version": committed.version},
        status_code=201 if plan.is_new else 200,
        headers={"Location": f"/api/v1/documents/{committed.document_id}"},
    )


def _publishing_message(request: Request) -> str:
    """`?message=`: a note from staff that the notification email shows with the document."""
    return publishing.clean_message(request.query_params.get("message", ""))


def _content_type(request: Request) -> str | None:
    value = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not value or value == "application/octet-stream" or len(value) > 100 or "/" not in value:
        return None
    return value


async def get_document(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        document = await doc_service.get_document(call.session, call.principal, document_id)
        versions = list(await doc_service.versions(call.session, document.id))
        await doc_service.record_view(call.session, call.audit, document)
        return JSONResponse(document_json(document, versions))


async def delete_document(request: Request) -> Response:
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        await doc_service.trash(call.session, call.principal, call.audit, document_id)
    return Response(status_code=204)


def _version_param(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw is None:
        return None
    # Version numbers are 32-bit integers (document_versions.number).
    number = parse_int(raw, minimum=1, maximum=INT32_MAX)
    if number is None:
        raise ProblemError(404, "Not found", "version not found")
    return number


def _wants_inline(request: Request) -> bool:
    value = request.query_params.get("disposition", "attachment")
    if value not in ("attachment", "inline"):
        raise ProblemError(
            422, "Invalid request", "disposition is attachment or inline", field="disposition"
        )
    return value == "inline"


def disposition_headers(name: str, content_type: str, *, inline: bool) -> dict[str, str]:
    """Content-Disposition and CSP of a download: inline only for a previewable type."""
    if inline and content_type in PREVIEWABLE:
        return {
            "Content-Disposition": content_disposition(name, "inline"),
            "Content-Security-Policy": (
                PDF_PREVIEW_CSP if content_type == "application/pdf" else PREVIEW_CSP
            ),
            "X-Frame-Options": "SAMEORIGIN",
        }
    return {
        "Content-Disposition": content_disposition(name),
        "Content-Security-Policy": DOWNLOAD_CSP,
    }


async def get_content(request: Request) -> Response:
    svc = services(request)
    document_id = parse_id(request.path_params["document_id"], "document")
    number = _version_param(request)
    inline = _wants_inline(request)
    async with api_call(request) as call:
        document = await doc_service.get_document(call.session, call.principal, document_id)
        require(call.principal, Permission.DOWNLOAD, document.client_id)
        version = await doc_service.get_version(call.session, document, number)
        part = content.plan(
            request,
            version,
            disposition_headers(document.name, version.content_type, inline=inline),
        )
        if isinstance(part, Response):
            return part
        if request.method == "HEAD":
            # The headers tell the size, type and ETag, and no byte goes out: what the
            # document's details tell, so it is recorded as they are, not as a download.
            await doc_service.record_view(call.session, call.audit, document)
        context, user_ref = call.audit, call.principal.user_ref
    opened = doc_service.open_version(svc.keyring, document, version)
    # The first piece is read between the two transactions, not in one: on SQLite every
    # transaction holds the database's write lock, which no request of any process would
    # get while the store answered.
    opening = await content.open_stream(
        svc, version, opened, part, read_first=request.method == "GET"
    )
    if request.method == "GET":
        try:
            async with transaction(svc.sessions) as session:
                await doc_service.record_download(
                    session,
                    context,
                    document,
                    version=version.number,
                    range_=part.range,
                    size=part.end - part.start,
                    inline=inline,
                )
        except BaseException:
            await opening.close()
            raise
    # Only a whole body sent to the end is a delivery: not a range, not a HEAD (no body),
    # not a preview, which the document page loads by itself whenever it is opened, and
    # not a download another site forced on a signed-in browser (review item 12).
    completed = (
        receipts.Completed(document.client_id, document.id, version.id, version.number, user_ref)
        if part.status == 200 and request.method == "GET" and not inline and deliberate(request)
        else None
    )
    media = (
        version.content_type if version.content_type in INLINE_SAFE else "application/octet-stream"
    )

    async def after() -> None:
        if completed is not None:
            await record_receipt(svc, context, completed)

    return content.stream(
        svc, document, version, opening, part, context, media_type=media, after=after
    )


async def record_receipt(
    svc: Services, context: audit.AuditContext, completed: receipts.Completed
) -> None:
    """Record a finished download in a short transaction of its own; a failure here is
    logged, never turned into a failed download the client already received."""
    try:
        async with transaction(svc.sessions) as session:
            await receipts.record_completed(session, context, completed)
    except Exception:
        logger.exception("could not record the receipt of document %s", completed.document_id)


def _number(request: Request) -> int:
    raw = request.path_params["number"]
    number = parse_int(raw, minimum=1, maximum=INT32_MAX)
    if number is None:
        raise ProblemError(404, "Not found", "version not found")
    return number


async def restore_version(request: Request) -> JSONResponse:
    """`POST /documents/{id}/versions/{n}/restore`: version n's bytes become a new version."""
    svc = services(request)
    async with api_call(request) as call:
        principal, context = call.principal, call.audit
        document_id = parse_id(request.path_params["document_id"], "document")
        number = _number(request)
        default = svc.settings.quotas.default_bytes
        client_id, admission = await quotas.admit_copy(
            call.session, principal, document_id, number, default=default
        )
    try:
        document, version = await doc_service.restore_version(
            svc.sessions,
            svc.store,
            svc.keyring,
            principal,
            context,
            document_id=document_id,
            number=number,
            part_size=svc.part_size,
            concurrency=svc.settings.storage.concurrency,
        )
    finally:
        with anyio.CancelScope(shield=True):
            await quotas.release_in(svc.sessions, admission)
    async with api_call(request) as call:
        await quotas.note_usage(call.session, client_id, default=default)
    return JSONResponse(
        {"document_id": str(document.id), "version": version.number, "restored_from": number},
        status_code=201,
        headers={"Location": f"/api/v1/documents/{document.id}"},
    )


def receipts_json(found: list[receipts.VersionReceipts]) -> list[dict[str, Any]]:
    def member(m: receipts.Member) -> dict[str, Any]:
        return {"id": str(m.id), "email": m.email, "display_name": m.display_name}

    return [
        {
            "version": r.number,
            "received": [{**member(m), "completed_at": iso(at)} for m, at in r.received],
            "waiting": [member(m) for m in r.waiting],
        }
        for r in found
    ]


async def get_receipts(request: Request) -> JSONResponse:
    """Which client members downloaded each version in full (staff, admin)."""
    async with api_call(request) as call:
        document_id = parse_id(request.path_params["document_id"], "document")
        document = await doc_service.get_document(call.session, call.principal, document_id)
        found = await receipts.receipts(call.session, call.principal, document)
        await receipts.record_viewed(call.session, call.audit, document)
        return JSONResponse({"document_id": str(document.id), "versions": receipts_json(found)})
