"""Who a tus request acts for, and what that allows: one tus implementation
(`web.api.uploads`) serves signed-in callers at /api/v1/uploads and visitors of an
upload-request link at /s/{token}/uploads, each through its binding.

A binding authenticates the request, picks the folder, admits or refuses an upload before
any byte is accepted, and checks that an existing upload is one the caller may continue.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault.audit import AuditContext
from vault.policy import Principal
from vault.uploads import Upload
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
    # Recorded in the transaction that commits the version (or holds it).
    on_commit: OnCommit | None = None


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


class APIBinding:
    """Signed-in callers (token or browser session): uploads into any folder they may
    write, each continued only by its creator."""

    @asynccontextmanager
    async def call(self, request: Request) -> AsyncIterator[TusCall]:
        hold = services(request).settings.scan.all_uploads
        async with api_call(request) as call:
            yield TusCall(call.session, call.principal, call.audit, call.principal, hold)

    def location(self, request: Request, upload_id: uuid.UUID) -> str:
        return f"/api/v1/uploads/{upload_id}"

    async def folder_for(self, call: TusCall, pairs: dict[str, bytes]) -> uuid.UUID:
        return parse_id(metadata_text(pairs, "folder_id"), "folder")

    async def admit(self, call: TusCall, *, length: int) -> None:
        return None

    async def created(self, call: TusCall, upload: Upload, pairs: dict[str, bytes]) -> None:
        return None

    async def check(self, call: TusCall, upload: Upload) -> None:
        return None  # `uploads.get_upload` already checked the owner


API = APIBinding()
