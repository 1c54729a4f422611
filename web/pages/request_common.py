"""What the document request pages share: progress, client names, who may ask whom."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import folders as folder_service
from vault.audit import AuditContext
from vault.document_requests import RequestView
from vault.models import Client, Folder
from vault.policy import Permission, Principal, allows
from vault.request_tables import ItemStatus
from web.auth import Caller


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    accepted: int
    submitted: int
    rejected: int


def progress(view: RequestView) -> Progress:
    statuses = [ItemStatus(i.status) for i in view.items]
    return Progress(
        total=len(statuses),
        accepted=statuses.count(ItemStatus.ACCEPTED),
        submitted=statuses.count(ItemStatus.SUBMITTED),
        rejected=statuses.count(ItemStatus.REJECTED),
    )


@dataclass(frozen=True, slots=True)
class Row:
    view: RequestView
    client_name: str
    overdue: bool
    progress: Progress


async def client_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Client.id, Client.name).where(col(Client.id).in_(wanted)))
    return {uuid.UUID(str(cid)): str(name) for cid, name in rows.all()}


def may_request(principal: Principal, client_id: uuid.UUID) -> bool:
    return allows(principal, Permission.REQUEST_DOCUMENTS, client_id)


async def requestable_clients(
    session: AsyncSession, principal: Principal, context: AuditContext | None = None
) -> list[Client]:
    clients = await folder_service.list_clients(session, principal, context=context)
    return [c for c in clients if may_request(principal, c.id)]


def browser_context(caller: Caller) -> dict[str, Any]:
    assert caller.browser is not None
    return {"user": caller.user, "csrf_token": caller.browser.csrf_token}


def folder_paths(folders: Sequence[Folder]) -> list[tuple[uuid.UUID, str]]:
    """Every folder of a client with its path from the root, in path order."""
    by_id = {f.id: f for f in folders}

    def path(folder: Folder) -> str:
        parts = [folder.name]
        seen = {folder.id}
        parent = folder.parent_id
        while parent is not None and parent in by_id and parent not in seen:
            seen.add(parent)
            parts.append(by_id[parent].name)
            parent = by_id[parent].parent_id
        return " / ".join(reversed(parts))

    paths = [(f.id, path(f)) for f in folders]
    return sorted(paths, key=lambda p: p[1].casefold())


async def client_folders(
    session: AsyncSession, client_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(select(Folder).where(Folder.client_id == client_id))
    return folder_paths(rows.scalars().all())
