"""The signed-in home page: who you are and the clients you can see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from vault import folders as folder_service
from vault.db import transaction
from vault.models import Client, Document, Folder
from vault.policy import Principal
from web.context import services
from web.pages.common import browser_caller, page
from web.pages.render import render


@dataclass(frozen=True, slots=True)
class ClientSummary:
    client: Client
    folders: int
    documents: int


async def client_summaries(session: AsyncSession, principal: Principal) -> list[ClientSummary]:
    """The clients the principal can see, with how many folders and live documents each has."""
    clients = await folder_service.list_clients(session, principal)
    ids = [c.id for c in clients]
    if not ids:
        return []
    folder_rows = await session.execute(
        select(Folder.client_id, func.count())
        .where(col(Folder.client_id).in_(ids))
        .group_by(col(Folder.client_id))
    )
    document_rows = await session.execute(
        select(Document.client_id, func.count())
        .where(col(Document.client_id).in_(ids), col(Document.deleted_at).is_(None))
        .group_by(col(Document.client_id))
    )
    folders: dict[uuid.UUID, int] = {cid: int(n) for cid, n in folder_rows.all()}
    documents: dict[uuid.UUID, int] = {cid: int(n) for cid, n in document_rows.all()}
    return [ClientSummary(c, folders.get(c.id, 0), documents.get(c.id, 0)) for c in clients]


@page
async def home(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        summaries = await client_summaries(session, caller.principal)
    assert caller.browser is not None
    return render(
        request,
        "home.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        clients=summaries,
    )
