"""The drop page without JavaScript: `POST /s/{token}/uploads/form`, a multipart form
(uploader_name, uploader_email, then the files) streamed into the link's folder by the same
receiver as the signed-in upload form (`web.multipart_upload`).

A form does not say how large its files are, so the link's limits are kept as the bytes
stream: each file reserves its place against `max_files` before its first byte, may be no
larger than `max_file_bytes` and what `max_total_bytes` has left, and adds its size to the
link's total when it is committed, in the same transaction (refused if a racing visitor
took the rest meanwhile).
"""

from __future__ import annotations

import uuid
from typing import NoReturn

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import documents as doc_service
from vault import drops, link_policy, links, quarantine, quotas, uploads
from vault.crypto import blobs
from vault.db import transaction
from vault.errors import (
    IncompleteUploadError,
    InvalidDropError,
    LinkFullError,
    LinkNotFoundError,
    QuotaExceededError,
)
from vault.links import Link, LinkRef
from vault.models import User
from vault.policy import SYSTEM, Principal
from web.api.links import link_defaults
from web.auth import Caller
from web.link_uploads import dropped, refused, refused_because, unlocked, visitor_context
from web.multipart_parts import Part
from web.multipart_upload import FormUploadError, StoredFile, _Receiver
from web.pages.common import page
from web.pages.render import render


def routes() -> list[BaseRoute]:
    return [Route("/s/{token}/uploads/form", submit, methods=["POST"])]


class _DropReceiver(_Receiver):
    def __init__(self, request: Request) -> None:
        async def folder_for(_fields: dict[str, list[str]]) -> uuid.UUID:
            return self.folder_id

        super().__init__(request, folder_for, None, hold=True)
        self.token: str = request.path_params["token"]
        self.link_id = uuid.UUID(int=0)
        self.link: LinkRef | None = None  # once the token opened a link
        self.folder_id = uuid.UUID(int=0)
        self.context = visitor_context(request)
        # The name the visitor sent for the file being stored: their answer names it, never
        # the free name it was stored under (which would tell them what else is there).
        self.sent_name = ""

    async def _authenticate(self, part: Part) -> None:
        # No session and so no CSRF token: the link's secret token is the only key.
        try:
            async with transaction(self.svc.sessions) as session:
                link = await drops.open_link(
                    session, self.token, defaults=link_defaults(self.svc.settings), continuing=False
                )
                if not await unlocked(session, self.request, link):
                    raise LinkNotFoundError("locked", link)
                lender = await drops.lender(session, link)
                user = await session.get_one(User, lender.user_id)
                policy = await link_policy.effective(
                    session, link_defaults(self.svc.settings), link.client_id
                )
                self.hold = policy.scan_drops or self.svc.settings.scan.all_uploads
                assert link.folder_id is not None
                self.link_id, self.folder_id = link.id, link.folder_id
                self.link = links.ref(link)
                self.caller = Caller(principal=lender, user=user)
        except LinkNotFoundError as exc:
            await refused(self.request, exc)
            raise
        if part.filename is None:
            self._keep_text(part.name, await self._text())
        else:
            self._refuse("give your name and email address first", "uploader_name")

    def _refuse(self, message: str, rule: str) -> NoReturn:
        raise FormUploadError(
            message, stored=self.stored, rule=rule, position=self.files_seen, caller=self.caller
        )

    def _given(self, name: str) -> str:
        values = self.lists.get(name) or [""]
        return values[0]

    async def plan(
        self, session: AsyncSession, principal: Principal, folder_id: uuid.UUID, name: str
    ) -> doc_service.UploadPlan:
        self.sent_name = name
        return await uploads.plan_new_document(
            session, principal, self.svc.keyring, folder_id=folder_id, name=name
        )

    async def admit_file(self) -> int:
        try:
            drops.clean_name(self._given("uploader_name"))
            drops.clean_email(self._given("uploader_email"))
        except InvalidDropError as exc:
            self._refuse(str(exc), exc.field)
        async with transaction(self.svc.sessions) as session:
            link = await session.get_one(Link, self.link_id)
            try:
                await drops.admit(session, link, length=0)
            except LinkFullError as exc:
                self._refuse(str(exc), "link_full")
            limit = self.svc.max_upload_size
            if link.max_file_bytes is not None:
                limit = min(limit, link.max_file_bytes)
            if link.max_total_bytes is not None:
                limit = min(limit, max(0, link.max_total_bytes - link.bytes_received))
            return limit

    async def _commit(
        self,
        principal: Principal,
        plan: doc_service.UploadPlan,
        admission: quotas.Admission,
        blob: blobs.StoredBlob,
        content_type: str | None,
    ) -> StoredFile:
        size = blob.plaintext_size
        default = self.svc.settings.quotas.default_bytes
        drop_id = uuid.uuid4()  # a form has no tus upload: the drop gets an id of its own
        try:
            async with transaction(self.svc.sessions) as session:
                await quotas.settle(session, plan.client_id, admission, size, default=default)
                counted = await session.execute(
                    update(Link)
                    .where(
                        col(Link.id) == self.link_id,
                        (col(Link.max_total_bytes).is_(None))
                        | (col(Link.bytes_received) + size <= col(Link.max_total_bytes)),
                    )
                    .values(bytes_received=col(Link.bytes_received) + size)
                    .execution_options(synchronize_session=False)
                )
                if int(getattr(counted, "rowcount", 0) or 0) != 1:
                    raise LinkFullError("this link takes no more bytes")
                link = await session.get_one(Link, self.link_id)
                await drops.record(
                    session,
                    self.context,
                    link,
                    upload_id=drop_id,
                    document_id=plan.document_id,
                    version_id=plan.version_id,
                    name=plan.name,
                    length=size,
                    uploader_name=self._given("uploader_name"),
                    uploader_email=self._given("uploader_email"),
                )
                committed = await quarantine.commit_or_hold(
                    session,
                    SYSTEM,
                    self.context,
                    plan,
                    blob,
                    hold=self.hold,
                    content_type=content_type,
                    details={"drop_id": str(drop_id)},
                )
                await dropped(self.link_id, self.context, session, drop_id, committed)
                await quotas.note_usage(session, plan.client_id, default=default)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.svc.store.delete(plan.storage_key)
            if isinstance(exc, QuotaExceededError):
                self._refuse_quota(exc)
            raise
        return StoredFile(self.sent_name, plan.document_id, None, size, held=committed.held)


# `link.refused` reasons of the form's refusals, by `FormUploadError.rule` (any other rule
# is a naming rule the file's name broke), as `web.link_uploads.refusal_reason` for tus.
_REASONS = {
    "link_full": "limit",
    "too_large": "too_large",
    "quota": "quota",
    "uploader_name": "bad_metadata",
    "uploader_email": "bad_metadata",
}


@page
async def submit(request: Request) -> Response:
    receiver = _DropReceiver(request)
    error = ""
    try:
        await receiver.run()
    except FormUploadError as exc:
        error = exc.message
        if receiver.link is not None:
            await refused_because(request, receiver.link, _REASONS.get(exc.rule or "", "bad_name"))
        await receiver.drain(receiver.svc.max_upload_size)
    except IncompleteUploadError:
        return render(request, "error.html", status=400)
    names = [stored.name for stored in receiver.stored]
    return render(
        request,
        "drop-result.html",
        status=422 if error or not names else 200,
        names=names,
        error=error,
        back=f"/s/{receiver.token}",
    )
