"""Resumable uploads: tus 1.0.0 (core, creation, creation-with-upload, termination,
expiration, checksum) at /api/v1/uploads.

The protocol as implemented, and the whole-segment rule, are described in docs/uploads.md.
The domain side is `vault.uploads` (parts: `vault.uploads.append`; segment claims and staged
segments: `vault.uploads.staging`; finishing: `vault.uploads.finish`); this module speaks HTTP.

Every response, errors included, carries `Tus-Resumable: 1.0.0`. Errors are problem+json
like the rest of the API. Authentication comes before the protocol version check, so an
anonymous caller learns nothing about the endpoint but that it needs a token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import wraps

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from vault import crypto, quotas, uploads
from vault.db import transaction
from vault.folders import get_folder
from vault.uploads import append as upload_append
from vault.uploads import finish as upload_finish
from web.api import tus_checksum
from web.api.common import parse_id
from web.context import services
from web.errors import EXCEPTION_HANDLERS, ProblemError
from web.numbers import INT64_MAX, parse_int
from web.services import MiB, Services
from web.tus_binding import API, TusBinding, TusCall, metadata_text

logger = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
SEGMENT = 1 << crypto.DEFAULT_SHIFT
OFFSET_STREAM = "application/offset+octet-stream"
# Not a tus header: the PATCH body size that stores without waste (a whole number of parts).
CHUNK_SIZE_HEADER = "ClientVault-Chunk-Size"

Handler = Callable[[Request, TusBinding], Awaitable[Response]]


def tus_endpoint(handler: Handler) -> Callable[..., Awaitable[Response]]:
    """Answer errors as problem+json like the rest of the API, and mark every response tus."""

    @wraps(handler)
    async def endpoint(request: Request, binding: TusBinding = API) -> Response:
        try:
            response = await handler(request, binding)
        except Exception as exc:
            response = await _problem(request, exc)
        response.headers["Tus-Resumable"] = TUS_VERSION
        return response

    return endpoint


async def _problem(request: Request, exc: Exception) -> Response:
    # The app's own handlers, most specific first (the mapping is ordered that way).
    for kind, handle in EXCEPTION_HANDLERS.items():
        if isinstance(exc, kind):
            response: Response = await handle(request, exc)
            return response
    raise exc  # pragma: no cover - `Exception` is among the handlers


def chunk_size(svc: Services, part_size: int) -> int:
    """`[uploads].chunk_size_mib` rounded down to whole parts of `part_size` (at least one):
    the configured part size before an upload exists, the upload's own after."""
    return max(1, svc.settings.uploads.chunk_size_mib * MiB // part_size) * part_size


def max_size(svc: Services) -> int:
    return min(svc.max_upload_size, uploads.MAX_LENGTH)


def _expires_in(svc: Services) -> timedelta:
    return timedelta(hours=svc.settings.uploads.expire_hours)


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate, as tus requires for `Upload-Expires`."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _require_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise ProblemError(
            412,
            "Precondition failed",
            f"this server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION},
        )


def _optional_count(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    # Offsets and lengths are stored as 64-bit integers.
    value = parse_int(raw, maximum=INT64_MAX)
    if value is None:
        raise ProblemError(400, "Bad request", f"{name} must be a non-negative integer")
    return value


def _count(request: Request, name: str) -> int:
    value = _optional_count(request, name)
    if value is None:
        raise ProblemError(400, "Bad request", f"the {name} header is required")
    return value


def _media_type(value: bytes | None) -> str | None:
    """The `filetype` metadata (tus-js-client sends it) as a plain media type, if it is one."""
    if not value:
        return None
    try:
        text = value.decode("ascii").split(";")[0].strip().lower()
    except UnicodeDecodeError:
        return None
    if not text or len(text) > 100 or text.count("/") != 1 or text == "application/octet-stream":
        return None
    if not all(c.isalnum() or c in "!#$&^_.+-/" for c in text):
        return None
    return text


def _require_offset_stream(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != OFFSET_STREAM:
        raise ProblemError(415, "Unsupported media type", f"send Content-Type: {OFFSET_STREAM}")


def _document_headers(finished: upload_finish.Finished, call: TusCall) -> dict[str, str]:
    if not call.reveal:
        return {}
    if finished.held:
        # No version yet: it waits in quarantine until the scanner passes it.
        return {"Document-Id": str(finished.document_id), "Document-Scan": "pending"}
    return {"Document-Id": str(finished.document_id), "Document-Version": str(finished.version)}


# Recorded as the `upload.failed` reason of an upload whose creating POST was cut off.
CREATION_CUT_OFF = "the request that created it was cut off"


class _Body:
    """The request body as it streams in, and whether it arrived whole."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.received = 0
        self.cut_short = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if chunk:
                    self.received += len(chunk)
                    yield chunk
        except ClientDisconnect:
            # The whole parts that arrived are kept; the client resumes from the offset a
            # HEAD reports.
            self.cut_short = True


async def _receive(
    request: Request,
    upload: uploads.Upload,
    call: TusCall,
    checksum: tuple[str, bytes] | None,
    *,
    creating: bool = False,
) -> dict[str, str]:
    """Store what the body brings (a PATCH's, or a POST's with creation-with-upload) and
    finish the upload if it reached the end; the answer's tus headers."""
    svc = services(request)
    resumable = uploads.Resumable.of(upload, svc.keyring)
    body = _Body(request)
    digests = svc.upload_digests
    if checksum is None:
        appended = await upload_append.append(
            svc.sessions,
            svc.store,
            resumable,
            body,
            expires_in=_expires_in(svc),
            digests=digests,
            budget=svc.upload_budget,
        )
    else:
        appended = await tus_checksum.append_checked(
            svc,
            resumable,
            body,
            checksum,
            remaining=resumable.length - upload.stored_offset,
            expires_in=_expires_in(svc),
        )
    if creating and body.cut_short and not appended.final_stored:
        # The upload's address comes only with this answer, which the client will never
        # read: nobody can resume it, so it goes now rather than hold its length against
        # the quota (and its name against drops) until it expires, as it still does if this
        # fails.
        try:
            async with transaction(svc.sessions) as session:
                gone = await uploads.terminate(
                    session, call.principal, call.audit, upload.id, reason=CREATION_CUT_OFF
                )
        except Exception:
            logger.warning("could not drop cut-off upload %s", upload.id, exc_info=True)
        else:
            await _discard(svc, gone)
        return {}
    if appended.final_stored:
        finished = await upload_finish.finish(
            svc.sessions,
            svc.store,
            svc.keyring,
            call.finisher,
            call.audit,
            upload.id,
            digests=digests,
            budget=svc.upload_budget,
            hold=call.hold,
            on_commit=call.on_commit,
            details=call.details(upload) if call.details else None,
        )
        async with transaction(svc.sessions) as session:
            await quotas.note_usage(
                session, upload.client_id, default=svc.settings.quotas.default_bytes
            )
        return {"Upload-Offset": str(resumable.length), **_document_headers(finished, call)}
    stalled = appended.offset == upload.stored_offset and body.received and not body.cut_short
    if stalled and not creating:
        chunked = chunk_size(svc, upload.part_size)
        # A client that keeps sending less than a segment would never advance: tell it why.
        raise ProblemError(
            400,
            "Bad request",
            f"nothing was stored: a PATCH must carry at least one whole {SEGMENT}-byte "
            f"segment or the rest of the upload; chunks of {chunked} bytes "
            f"({CHUNK_SIZE_HEADER}) are stored with no byte sent twice",
            headers={CHUNK_SIZE_HEADER: str(chunked)},
        )
    expires = appended.expires_at or upload.expires_at
    return {"Upload-Offset": str(appended.offset), "Upload-Expires": http_date(expires)}


# --- Routes ----------------------------------------------------------------------------------


@tus_endpoint
async def options(request: Request, binding: TusBinding) -> Response:
    """Discovery; public, like any tus server's (the request's Tus-Resumable is ignored)."""
    svc = services(request)
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(max_size(svc)),
            "Tus-Checksum-Algorithm": ",".join(tus_checksum.ALGORITHMS),
            CHUNK_SIZE_HEADER: str(chunk_size(svc, svc.part_size)),
        },
    )


@tus_endpoint
async def create(request: Request, binding: TusBinding) -> Response:
    svc = services(request)
    async with binding.call(request) as call:
        _require_version(request)
        if request.headers.get("upload-defer-length") is not None:
            raise ProblemError(400, "Bad request", "deferred lengths are not supported")
        length = _count(request, "upload-length")
        limit = max_size(svc)
        if length > limit:
            raise ProblemError(
                413,
                "Content too large",
                f"the limit is {limit} bytes",
                headers={"Tus-Max-Size": str(limit)},
            )
        declared = _optional_count(request, "content-length")
        with_upload = bool(declared or request.headers.get("transfer-encoding"))
        checksum = None
        if with_upload:
            # tus 1.0.0 §creation-with-upload: the first bytes come with the POST, as a PATCH
            # at offset 0 would bring them.
            _require_offset_stream(request)
            if declared is not None and declared > length:
                raise ProblemError(
                    413, "Content too large", f"{declared} bytes run past Upload-Length {length}"
                )
            checksum = tus_checksum.parse(request)
        raw = request.headers.get("upload-metadata", "")
        pairs = uploads.parse_metadata(raw)
        name = metadata_text(pairs, "filename")
        folder_id = await binding.folder_for(call, pairs)
        await binding.admit(call, length=length)
        folder = await get_folder(call.session, call.principal, folder_id)
        # The upload's row reserves its Upload-Length once committed with this admission.
        await quotas.admit(
            call.session,
            folder.client_id,
            length,
            default=svc.settings.quotas.default_bytes,
            reserve=False,
        )
        upload = await uploads.create_upload(
            call.session,
            call.principal,
            call.audit,
            svc.keyring,
            svc.store,
            folder_id=folder_id,
            name=name,
            length=length,
            part_size=svc.part_size,
            max_size=svc.max_upload_size,
            expires_in=_expires_in(svc),
            metadata=raw or None,
            content_type=_media_type(pairs.get("filetype")),
            new_document=call.new_documents,
        )
        await binding.created(call, upload, pairs)
    headers = {
        "Location": binding.location(request, upload.id),
        "Upload-Offset": "0",
        "Upload-Expires": http_date(upload.expires_at),
        CHUNK_SIZE_HEADER: str(chunk_size(svc, upload.part_size)),
    }
    if with_upload:
        answer = await _receive(request, upload, call, checksum, creating=True)
        headers.update(answer)
        if "Document-Id" in answer:
            del headers["Upload-Expires"]
    elif length == 0:
        # Nothing will ever be sent: the (empty) final part is all there is, so finish now.
        resumable = uploads.Resumable.of(upload, svc.keyring)
        await upload_append.append(
            svc.sessions, svc.store, resumable, _nothing(), expires_in=_expires_in(svc)
        )
        finished = await upload_finish.finish(
            svc.sessions,
            svc.store,
            svc.keyring,
            call.finisher,
            call.audit,
            upload.id,
            hold=call.hold,
            on_commit=call.on_commit,
            details=call.details(upload) if call.details else None,
        )
        headers.update(_document_headers(finished, call))
        del headers["Upload-Expires"]
    return Response(status_code=201, headers=headers)


async def _nothing() -> AsyncIterator[bytes]:
    empty: tuple[bytes, ...] = ()
    for chunk in empty:
        yield chunk


@tus_endpoint
async def head(request: Request, binding: TusBinding) -> Response:
    upload_id = parse_id(request.path_params["upload_id"], "upload")
    async with binding.call(request) as call:
        _require_version(request)
        upload = await uploads.get_upload(
            call.session, call.principal, upload_id, context=call.audit
        )
        await binding.check(call, upload)
    headers = {
        "Upload-Offset": str(uploads.reported_offset(upload)),
        "Upload-Length": str(upload.upload_length),
        "Cache-Control": "no-store",
        CHUNK_SIZE_HEADER: str(chunk_size(services(request), upload.part_size)),
    }
    if upload.tus_metadata:
        headers["Upload-Metadata"] = upload.tus_metadata
    if upload.state == uploads.UploadState.COMPLETE:
        # A client whose final PATCH lost its answer learns the document here.
        headers.update(_document_headers(upload_finish.Finished.of(upload), call))
    else:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return Response(status_code=200, headers=headers)


@tus_endpoint
async def patch(request: Request, binding: TusBinding) -> Response:
    upload_id = parse_id(request.path_params["upload_id"], "upload")
    async with binding.call(request) as call:
        _require_version(request)
        upload = await uploads.get_upload(call.session, call.principal, upload_id, write=True)
        await binding.check(call, upload)
        _require_offset_stream(request)
        offset = _count(request, "upload-offset")
        current = uploads.reported_offset(upload)
        if offset != current:
            raise ProblemError(
                409, "Conflict", f"Upload-Offset is {offset}, but the upload is at {current}"
            )
        declared = _optional_count(request, "content-length")
        if declared is not None and current + declared > upload.upload_length:
            raise ProblemError(
                413,
                "Content too large",
                f"{declared} bytes at offset {current} run past Upload-Length "
                f"{upload.upload_length}",
            )
        checksum = tus_checksum.parse(request)
    if upload.state == uploads.UploadState.COMPLETE:
        # The final request again (its answer was lost, say): the same answer, nothing stored.
        async for chunk in request.stream():
            if chunk:
                raise ProblemError(413, "Content too large", "the upload is already complete")
        finished = upload_finish.Finished.of(upload)
        return Response(
            status_code=204,
            headers={
                "Upload-Offset": str(upload.upload_length),
                **_document_headers(finished, call),
            },
        )
    headers = await _receive(request, upload, call, checksum)
    return Response(status_code=204, headers=headers)


@tus_endpoint
async def delete(request: Request, binding: TusBinding) -> Response:
    svc = services(request)
    upload_id = parse_id(request.path_params["upload_id"], "upload")
    async with binding.call(request) as call:
        _require_version(request)
        await binding.check(
            call, await uploads.get_upload(call.session, call.principal, upload_id, write=True)
        )
        upload = await uploads.terminate(call.session, call.principal, call.audit, upload_id)
    await _discard(svc, upload)
    return Response(status_code=204)


async def _discard(svc: Services, upload: uploads.Upload) -> None:
    """Drop what a terminated upload stored, once its row is gone."""
    svc.upload_digests.forget(upload.id)
    try:
        await uploads.discard(svc.store, upload)
    except Exception:
        # The row is gone, so `clientvault gc` aborts the parts once they pass its grace.
        logger.warning("could not drop the parts of terminated upload %s", upload.id, exc_info=True)
