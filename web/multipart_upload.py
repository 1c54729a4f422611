"""Files posted in a plain HTML form (multipart/form-data), stored as they stream in.

A browser without JavaScript sends files as parts of one multipart body. Starlette's
`request.form()` would spool each file part to a temporary file first, which puts plaintext
on disk; instead python-multipart's streaming parser is fed the body chunk by chunk and each
file part's bytes go straight into the encryptor, exactly as the API's one-shot upload does
(`prepare_upload` -> `blobs.write_encrypted` -> `commit_upload`).

The parser's callbacks only queue what one body chunk produced; the file's bytes are then
pulled by the encryptor from that queue, so at most one body chunk (plus the encryptor's own
parts in flight) is held per transfer, whatever the file size.

The form must start with the session's CSRF token: no file byte is accepted before the
browser session and its token are checked (a cross-site form cannot smuggle a file in).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault import documents as doc_service
from vault import quarantine, quotas
from vault.crypto import blobs
from vault.db import transaction
from vault.errors import IncompleteUploadError, InvalidNameError, QuotaExceededError, TooLargeError
from vault.policy import Principal
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.errors import ProblemError
from web.multipart_parts import (
    MAX_FIELDS,
    MAX_FILES,
    MAX_TEXT_FIELD,
    MAX_TEXT_TOTAL,
    Event,
    Part,
    boundary_of,
    events,
    part_headers,
    utf8,
)
from web.pages.common import browser_caller

__all__ = ["FormUpload", "FormUploadError", "StoredFile", "receive_upload"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    document_id: uuid.UUID
    version: int | None  # None while held in quarantine
    size: int
    held: bool = False


@dataclass(frozen=True, slots=True)
class FormUpload:
    """What a form brought: its small text fields and the files stored from it."""

    fields: dict[str, str]  # first value of each text field
    lists: dict[str, list[str]]  # every value of each text field, in order
    files: list[StoredFile]


class FormUploadError(Exception):
    """A file of the form could not be stored; `message` is for the page.

    Attributes:
        message: What went wrong, in words for the user (never echoes the file name).
        stored: The files of the same form stored before the failure; they stay stored.
        rule: For a refused file name, the naming rule it broke (see `vault.names`).
        position: 1-based number of the refused file among the form's files.
        caller: The signed-in browser that sent the form (the page is rendered for it).
        quota: For a file refused by the client's quota, the quota and the bytes in use.
    """

    def __init__(
        self,
        message: str,
        *,
        stored: list[StoredFile],
        rule: str | None = None,
        position: int | None = None,
        caller: Caller | None = None,
        quota: QuotaExceededError | None = None,
    ) -> None:
        super().__init__(message)
        self.quota = quota
        self.message = message
        self.stored = list(stored)
        self.rule = rule
        self.position = position
        self.caller = caller


# --- Receiving -------------------------------------------------------------------------------


class _Receiver:
    """One form as it streams in: events pulled in order, text fields kept, files stored."""

    def __init__(
        self,
        request: Request,
        folder_for: Callable[[dict[str, list[str]]], Awaitable[uuid.UUID]],
        details: Callable[[dict[str, list[str]]], dict[str, str] | None] | None,
        hold: bool,
    ) -> None:
        self.request = request
        self.svc = services(request)
        self.hold = hold
        self.folder_for = folder_for
        self.details = details
        self.events = events(request, boundary_of(request))
        self.lists: dict[str, list[str]] = {}
        self.text_total = 0
        self.parts = 0
        self.stored: list[StoredFile] = []
        self.files_seen = 0
        self.caller: Caller | None = None

    async def next_event(self) -> Event | None:
        try:
            return await self.events.__anext__()
        except StopAsyncIteration:
            return None

    async def run(self) -> tuple[Caller, FormUpload]:
        while (event := await self.next_event()) is not None:
            kind, _ = event
            if kind != "begin":
                continue
            self.parts += 1
            if self.parts > MAX_FIELDS + MAX_FILES:
                raise ProblemError(413, "Content too large", "the form has too many parts")
            part = part_headers(await self._headers())
            if self.caller is None:
                await self._authenticate(part)
            elif part.filename is None:
                self._keep_text(part.name, await self._text())
            else:
                await self._store_file(part)
        if self.caller is None:
            raise ProblemError(403, "Forbidden", "missing or wrong CSRF token")
        fields = {name: values[0] for name, values in self.lists.items() if values}
        return self.caller, FormUpload(fields=fields, lists=self.lists, files=list(self.stored))

    async def _headers(self) -> list[bytes]:
        headers: list[bytes] = []
        while (event := await self.next_event()) is not None:
            kind, payload = event
            if kind == "body":
                return headers
            if kind == "header":
                headers.append(payload)
        raise IncompleteUploadError("the form ended inside a part's headers")

    async def _part_events(self) -> AsyncIterator[bytes]:
        """The current part's data, until its end."""
        while (event := await self.next_event()) is not None:
            kind, payload = event
            if kind == "end":
                return
            if kind == "data":
                yield payload
        raise IncompleteUploadError("the form ended inside a part")

    async def _text(self) -> str:
        value = bytearray()
        async for piece in self._part_events():
            value += piece
            self.text_total += len(piece)
            if len(value) > MAX_TEXT_FIELD or self.text_total > MAX_TEXT_TOTAL:
                raise ProblemError(413, "Content too large", "a text field is too long")
        return utf8(bytes(value))

    def _keep_text(self, name: str, value: str) -> None:
        if sum(len(v) for v in self.lists.values()) >= MAX_FIELDS:
            raise ProblemError(413, "Content too large", "the form has too many fields")
        self.lists.setdefault(name, []).append(value)

    async def _authenticate(self, part: Part) -> None:
        # CSRF first: a file before the token would be bytes accepted from an unchecked
        # sender (a cross-site form posting into the victim's folders).
        if part.name != CSRF_FIELD or part.filename is not None:
            raise ProblemError(403, "Forbidden", "the form must start with its CSRF token")
        token = await self._text()
        async with transaction(self.svc.sessions) as session:
            self.caller = await browser_caller(self.request, session, csrf_token=token)
        self._keep_text(CSRF_FIELD, token)

    async def _store_file(self, part: Part) -> None:
        assert self.caller is not None
        name = part.filename or ""
        body = self._part_events()
        if name == "":
            # A file input left empty is sent as a part with no file name and no bytes.
            async for piece in body:
                if piece:
                    self._refuse_name(InvalidNameError("empty", "Name must not be empty."))
            return
        self.files_seen += 1
        if self.files_seen > MAX_FILES:
            raise ProblemError(413, "Content too large", "the form has too many files")
        file_limit = await self.admit_file()
        principal = self.caller.principal
        folder_id = await self.folder_for(self.lists)
        try:
            async with transaction(self.svc.sessions) as session:
                plan = await self.plan(session, principal, folder_id, name)
                admission = await quotas.admit(
                    session, plan.client_id, None, default=self.svc.settings.quotas.default_bytes
                )
        except InvalidNameError as exc:
            self._refuse_name(exc)
        except QuotaExceededError as exc:
            self._refuse_quota(exc)
        limit = admission.limit(file_limit)
        try:
            blob = await blobs.write_encrypted(
                self.svc.store,
                plan.storage_key,
                body,
                sealer=plan.sealer(),
                part_size=self.svc.part_size,
                concurrency=self.svc.settings.storage.concurrency,
                max_size=limit,
            )
        except TooLargeError:
            # Stopped as the bytes passed the limit: what was sent is aborted, never stored.
            if limit < file_limit:
                self._refuse_quota(admission.refusal())
            raise FormUploadError(
                f"A file is larger than the {limit} bytes allowed.",
                stored=self.stored,
                rule="too_large",
                position=self.files_seen,
                caller=self.caller,
            ) from None
        stored = await self._commit(principal, plan, admission, blob, part.content_type)
        self.stored.append(stored)

    async def plan(
        self, session: AsyncSession, principal: Principal, folder_id: uuid.UUID, name: str
    ) -> doc_service.UploadPlan:
        """The next file's plan: a version of the document of that name, or a new one."""
        return await doc_service.prepare_upload(
            session, principal, self.svc.keyring, folder_id=folder_id, name=name
        )

    async def admit_file(self) -> int:
        """The most bytes the next file may have; raises to refuse it before any byte."""
        return self.svc.max_upload_size

    async def _commit(
        self,
        principal: Principal,
        plan: doc_service.UploadPlan,
        admission: quotas.Admission,
        blob: blobs.StoredBlob,
        content_type: str | None,
    ) -> StoredFile:
        extra = self.details(self.lists) if self.details else None
        audit_details: dict[str, object] | None = dict(extra) if extra else None
        default = self.svc.settings.quotas.default_bytes
        try:
            async with transaction(self.svc.sessions) as session:
                await quotas.settle(
                    session, plan.client_id, admission, blob.plaintext_size, default=default
                )
                committed = await quarantine.commit_or_hold(
                    session,
                    principal,
                    audit_context(self.request, principal),
                    plan,
                    blob,
                    hold=self.hold,
                    content_type=content_type,
                    details=audit_details,
                )
                await quotas.note_usage(session, plan.client_id, default=default)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.svc.store.delete(plan.storage_key)
            if isinstance(exc, QuotaExceededError):
                self._refuse_quota(exc)
            raise
        return StoredFile(
            name=committed.name,
            document_id=committed.document_id,
            version=committed.version,
            size=blob.plaintext_size,
            held=committed.held,
        )

    def _refuse_name(self, exc: InvalidNameError) -> NoReturn:
        raise FormUploadError(
            exc.message,
            stored=self.stored,
            rule=exc.rule,
            position=self.files_seen or 1,
            caller=self.caller,
        ) from exc

    def _refuse_quota(self, exc: QuotaExceededError) -> NoReturn:
        raise FormUploadError(
            str(exc),
            stored=self.stored,
            rule="quota",
            position=self.files_seen or 1,
            caller=self.caller,
            quota=exc,
        ) from exc

    async def drain(self, limit: int) -> None:
        """Read and drop the rest of the body (at most `limit` bytes), so the browser, still
        sending, receives the answer rather than a reset connection."""
        seen = 0
        with anyio.move_on_after(60):
            try:
                while (event := await self.next_event()) is not None:
                    seen += len(event[1])
                    if seen > limit:
                        return
            except (IncompleteUploadError, ProblemError):
                return


async def receive_upload(
    request: Request,
    *,
    folder_for: Callable[[dict[str, list[str]]], Awaitable[uuid.UUID]],
    details: Callable[[dict[str, list[str]]], dict[str, str] | None] | None = None,
    hold: bool | None = None,
) -> tuple[Caller, FormUpload]:
    """Authenticate the browser (CSRF from the first field `csrf_token`), then store each
    file part into the folder `folder_for(fields_so_far)` returns, as they stream.

    Text fields are kept (bounded in size and number); each file part becomes a new document
    or the next version of the document of that name, committed as soon as its part ends.

    Raises:
        Redirect: the browser is not signed in (to the sign-in page).
        ProblemError: 403 for a missing or wrong CSRF token or a file before it; 400, 413,
            415 for a body that is not a well-formed, reasonably sized multipart form.
        FormUploadError: a file was refused (its name, its size), or `folder_for` refused
            the form by raising it; `.stored` lists the files stored before, which stay
            stored. The rest of the body is read and dropped, so the browser gets the answer.
        IncompleteUploadError: the body was cut off; the file it was in is not stored.
        NotFoundError, PermissionDeniedError: the folder is not visible, or not writable.
    """
    # `hold`: keep the files in quarantine until scanned; by default as `[scan].all_uploads`.
    if hold is None:
        hold = services(request).settings.scan.all_uploads
    receiver = _Receiver(request, folder_for, details, hold)
    try:
        return await receiver.run()
    except FormUploadError as exc:
        # Raised by `folder_for` too, which cannot know what was stored before it.
        if not exc.stored:
            exc.stored = list(receiver.stored)
        await receiver.drain(services(request).max_upload_size)
        raise
    finally:
        await receiver.events.aclose()
