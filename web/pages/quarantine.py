"""Versions held in quarantine, as staff see them on the folder and document pages, and
their decisions: release (publish unscanned) or delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import quarantine, quotas
from vault.db import transaction
from vault.drops import Drop
from vault.lookalikes import shown_name
from vault.models import Document, User
from vault.policy import Principal
from vault.quarantine_tables import HeldVersion, ScanState
from web.auth import CSRF_FIELD
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import browser_caller, page, read_form, see_other

# The folder page's notices after a decision here.
NOTICES = frozenset({"held", "released", "discarded"})


@dataclass(frozen=True, slots=True)
class HeldRow:
    version_id: uuid.UUID
    name: str
    size: int
    created_at: datetime
    uploaded_by: str
    state: str
    # The signature found, or why it was not scanned (English: the scanner's own words).
    detail: str
    may_release: bool


async def held_rows(
    session: AsyncSession,
    principal: Principal,
    *,
    folder_id: uuid.UUID | None = None,
    document: Document | None = None,
) -> list[HeldRow]:
    """What waits in quarantine in the folder (or for the document); empty for anyone who
    does not look after the client."""
    held: Sequence[HeldVersion]
    if document is not None:
        held = await quarantine.held_for_document(session, principal, document)
    elif folder_id is not None:
        held = await quarantine.held_in_folder(session, principal, folder_id)
    else:
        return []
    ids = {row.uploaded_by for row in held if row.uploaded_by}
    people: dict[uuid.UUID, str] = {}
    if ids:
        for user in (await session.execute(select(User).where(col(User.id).in_(ids)))).scalars():
            people[user.id] = shown_name(user.display_name, user.email, user.role)
    # Files dropped through an upload link name no user: show whom the visitor said they were.
    visitors = {
        drop.version_id: f"{drop.uploader_name} <{drop.uploader_email}>"
        for drop in (
            await session.execute(
                select(Drop).where(col(Drop.version_id).in_({row.version_id for row in held}))
            )
        ).scalars()
    }
    return [
        HeldRow(
            version_id=row.version_id,
            name=row.name,
            size=row.size,
            created_at=row.created_at,
            uploaded_by=people.get(row.uploaded_by, "")
            if row.uploaded_by
            else visitors.get(row.version_id, ""),
            state=row.state,
            detail=row.signature or row.reason or "",
            may_release=row.state != ScanState.INFECTED,
        )
        for row in held
    ]


def routes() -> list[BaseRoute]:
    return [
        Route("/quarantine/{version_id}/release", release, methods=["POST"]),
        Route("/quarantine/{version_id}/delete", delete, methods=["POST"]),
    ]


@page
async def release(request: Request) -> Response:
    version_id = parse_id(request.path_params["version_id"], "version")
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        context = audit_context(request, caller.principal)
        await quarantine.release(session, caller.principal, context, version_id)
        row = await session.get_one(HeldVersion, version_id)
        folder_id = row.folder_id
    return see_other(f"/folders/{folder_id}?done=released")


@page
async def delete(request: Request) -> Response:
    svc = services(request)
    version_id = parse_id(request.path_params["version_id"], "version")
    form = await read_form(request)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        context = audit_context(request, caller.principal)
        key = await quarantine.discard(session, caller.principal, context, version_id)
        row = await session.get_one(HeldVersion, version_id)
        folder_id = row.folder_id
        # Held bytes count towards the quota: falling below a usage alert re-arms it.
        await quotas.note_usage(session, row.client_id, default=svc.settings.quotas.default_bytes)
    with anyio.CancelScope(shield=True):
        # After the commit: a failure here leaves an orphan for fsck, never a held row
        # without its object.
        await svc.store.delete(key)
    return see_other(f"/folders/{folder_id}?done=discarded")
