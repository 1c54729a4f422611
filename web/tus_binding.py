"""Who a tus request acts for, and what that allows: one tus implementation
(`web.api.uploads`) serves signed-in callers at /api/v1/uploads and visitors of an
upload-request link at /s/{token}/uploads, each through its binding.

A binding authenticates the request, picks the folder, admits or refuses an upload before
any byte is accepted, and checks that an existing upload is one the caller may continue.

Signed-in callers name the target by metadata: `folder_id` (with `relative_path` when the
file comes from an uploaded folder, whose subfolders are created), or `request_item_id` for a
file answering a document request, which is submitted for that item in the transaction that
commits its version, on whichever process finishes the upload.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault import folder_paths, publishing, quarantine, request_uploads
from vault.audit import AuditContext
from vault.policy import Principal, is_firm
from vault.uploads import Upload, parse_metadata
from vault.uploads.finish import OnCommit
from web.api.common import api_call, parse_id
from web.context import services
from web.errors import ProblemError


@dataclass(frozen=True, slots=True)
class TusCall:
    session: AsyncSession
    # Owns the upload; its permissions gate creating and continuing it.
    principal: Principal
    audit: AuditContext
    # Commits the version (recorded as its uploader).
    finisher: Principal
    # Hold the finished version in quarantine until it is scanned.
    hold: bool
    # Whether answers name the document the upload became (visitors learn nothing).
    reveal: bool = True
    # Every upload starts a new document under a free name, never a version of one that is
    # there (a visitor must not replace what share links serve).
    new_documents: bool = False
    # Recorded in the transaction that commits the version (or holds it).
    on_commit: OnCommit | None = None
    # More details for the version's audit event, from the upload (e.g. its row's metadata).
    details: Callable[[Upload], dict[str, object] | None] | None = None


class TusBinding(Protocol):
    def call(self, request: Request) -> AbstractAsyncContextManager[TusCall]: ...

    def location(self, request: Request, upload_id: uuid.UUID) -> str: ...

    async def folder_for(self, call: TusCall, pairs: dict[str, bytes]) -> uuid.UUID: ...

    async def admit(self, call: TusCall, *, length: int) -> None:
        """Refuse (raise) an upload of `length` bytes before any byte is accepted."""

    async def created(self, call: TusCall, upload: Upload, pairs: dict[str, bytes]) -> None: ...

    async def check(self, call: TusCall, upload: Upload) -> None:
        """Raise `NotFoundError` unless the caller may continue `upload`."""


def metadata_text(pairs: dict[str, bytes], key: str) -> str:
    value = pairs.get(key)
    if value is None:
        raise ProblemError(
            400, "Bad request", f"Upload-Metadata must carry {key} (base64)", field=key
        )
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(
            400, "Bad request", f"the {key} metadata is not UTF-8", field=key
        ) from None


async def submit_for_item(
    principal: Principal,
    context: AuditContext,
    session: AsyncSession,
    upload_id: uuid.UUID,
    committed: quarantine.Committed,
) -> None:
    """Submit a finished upload for the request item its metadata names, if any. The
    metadata is read from the upload's row, so any process finishing it does the same."""
    upload = await session.get(Upload, upload_id)
    if upload is None or not upload.tus_metadata:
        return
    raw = parse_metadata(upload.tus_metadata).get("request_item_id")
    if raw is None:
        return
    item_id = uuid.UUID(raw.decode("ascii"))  # parsed when the upload was created
    await request_uploads.attach_upload(
        session, principal, context, item_id=item_id, committed=committed
    )


def upload_details(upload: Upload) -> dict[str, object] | None:
    """The publishing note sent as `message` metadata (checked at creation), recorded with
    the version's audit event so that the notification email carries it; and the request
    item an upload answers, kept with a version held in quarantine so that it is submitted
    for the item when it is published."""
    pairs = parse_metadata(upload.tus_metadata or "")
    found: dict[str, object] = {}
    if raw := pairs.get("message"):
        found["message"] = publishing.clean_message(raw.decode("utf-8"))
    if raw := pairs.get(request_uploads.ITEM_DETAIL):
        found[request_uploads.ITEM_DETAIL] = raw.decode("ascii")  # parsed at creation
    return found or None


class APIBinding:
    """Signed-in callers (token or browser session): uploads into any folder they may
    write, or for a document request's item, each continued only by its creator."""

    @asynccontextmanager
    async def call(self, request: Request) -> AsyncIterator[TusCall]:
        hold = services(request).settings.scan.all_uploads
        async with api_call(request) as call:
            yield TusCall(
                call.session,
                call.principal,
                call.audit,
                call.principal,
                hold,
                on_commit=partial(submit_for_item, call.principal, call.audit),
                details=upload_details,
            )

    def location(self, request: Request, upload_id: uuid.UUID) -> str:
        return f"/api/v1/uploads/{upload_id}"

    async def folder_for(self, call: TusCall, pairs: dict[str, bytes]) -> uuid.UUID:
        if "message" in pairs:
            # A note for the notification email: only the firm publishes, and it is checked
            # now, before any byte is accepted.
            if not is_firm(call.principal):
                raise ProblemError(
                    400, "Bad request", "only staff send a message with an upload", field="message"
                )
            publishing.clean_message(metadata_text(pairs, "message"))
        if "request_item_id" in pairs:
            item_id = parse_id(metadata_text(pairs, "request_item_id"), "item")
            return await request_uploads.upload_folder(call.session, call.principal, item_id)
        folder_id = parse_id(metadata_text(pairs, "folder_id"), "folder")
        if "relative_path" not in pairs:
            return folder_id
        return await folder_paths.ensure_folders(
            call.session,
            call.principal,
            call.audit,
            folder_id=folder_id,
            relative_path=metadata_text(pairs, "relative_path"),
        )

    async def admit(self, call: TusCall, *, length: int) -> None:
        return None

    async def created(self, call: TusCall, upload: Upload, pairs: dict[str, bytes]) -> None:
        return None

    async def check(self, call: TusCall, upload: Upload) -> None:
        return None  # `uploads.get_upload` already checked the owner


API = APIBinding()
