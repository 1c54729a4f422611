"""The folder browser's listing page (a client's top level or a folder), shared by the
routes that show it and those that answer a refused form with it again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from vault import documents as doc_service
from vault import drops, filing, quotas
from vault import folders as folder_service
from vault.errors import InvalidInput, InvalidNameError, NameTakenError
from vault.models import Client, Folder
from vault.policy import Permission, Principal, allows
from web.auth import Caller
from web.context import audit_context, services
from web.numbers import INT32_MAX, parse_int
from web.pages import link_pages
from web.pages import quarantine as held_pages
from web.pages.common import notice
from web.pages.render import render
from web.pages.thumbnails import thumbnail_links

FOLDER_NOTICES = (
    frozenset({"folder-created", "trashed", "renamed", "moved", "moved-many", "trashed-many"})
    | held_pages.NOTICES
)
COLUMNS = folder_service.SORT_KEYS


@dataclass(frozen=True, slots=True)
class SortLink:
    column: str
    href: str
    aria_sort: str  # "ascending", "descending" or "" for a column not sorted by


def sort_state(request: Request) -> tuple[str, bool]:
    sort = request.query_params.get("sort", "name")
    if sort not in COLUMNS:
        sort = "name"
    return sort, request.query_params.get("order", "asc") == "desc"


def sort_links(path: str, sort: str, descending: bool) -> dict[str, SortLink]:
    links: dict[str, SortLink] = {}
    for column in COLUMNS:
        current = column == sort
        order = "asc" if current and descending else ("desc" if current else "asc")
        aria = ("descending" if descending else "ascending") if current else ""
        links[column] = SortLink(
            column, f"{path}?{urlencode({'sort': column, 'order': order})}", aria
        )
    return links


@dataclass(frozen=True, slots=True)
class FilingError:
    """Why a rename, a move or a selection was refused, for the page to say beside the form
    it came from (`form`: "rename", "move" or "selection")."""

    form: str
    kind: str  # "taken", "name", "into-itself", "none-selected"
    name: str = ""  # the name already taken
    reason: str = ""  # the naming rule broken, as vault.names words it
    typed: str = ""  # what was typed, given back in the field


def filing_error(exc: Exception, *, form: str, typed: str = "") -> FilingError | None:
    """The page's words for a refusal it can explain beside its form; None for the others,
    which the error page answers."""
    if isinstance(exc, NameTakenError):
        return FilingError(form, "taken", name=exc.name, typed=typed)
    if isinstance(exc, InvalidNameError):
        return FilingError(form, "name", reason=exc.message, typed=typed)
    if isinstance(exc, InvalidInput) and exc.rule == "into-itself":
        return FilingError(form, "into-itself")
    return None


def count_param(request: Request) -> int:
    # A link may say how many were moved, but cannot put other words on the page.
    return parse_int(request.query_params.get("n", ""), maximum=INT32_MAX) or 0


def crumbs(client: Client, chain: list[Folder]) -> list[tuple[str, str]]:
    """(label, link) from the client down to the current folder."""
    return [(client.name, f"/clients/{client.id}")] + [(f.name, f"/folders/{f.id}") for f in chain]


def abilities(principal: Principal, client_id: uuid.UUID) -> dict[str, Any]:
    return {
        "can_upload": allows(principal, Permission.UPLOAD, client_id),
        "can_download": allows(principal, Permission.DOWNLOAD, client_id),
        "can_create_folder": allows(principal, Permission.CREATE_FOLDER, client_id),
        "can_delete": allows(principal, Permission.DELETE, client_id),
        "can_manage": doc_service.may_manage(principal, client_id),
        # Renaming and moving (vault/filing.py): documents with DELETE, folders also need
        # CREATE_FOLDER.
        "can_file": allows(principal, Permission.DELETE, client_id),
        "can_file_folder": allows(principal, Permission.DELETE, client_id)
        and allows(principal, Permission.CREATE_FOLDER, client_id),
    }


async def listing_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    client: Client,
    folder: Folder | None,
    status: int = 200,
    folder_error: str = "",
    folder_name: str = "",
    problem: FilingError | None = None,
) -> Response:
    assert caller.browser is not None
    sort, descending = sort_state(request)
    folders, _ = await folder_service.children(
        session, client_id=client.id, folder_id=folder.id if folder else None
    )
    subfolders = list(folders)
    if sort == "name" and descending:
        subfolders.reverse()
    documents: list[folder_service.ListedDocument] = []
    chain: list[Folder] = []
    if folder is not None:
        chain = await folder_service.ancestors(session, folder)
        documents = folder_service.sort_documents(
            await folder_service.listed_documents(session, folder.id),
            sort=sort,
            descending=descending,
        )
    summaries = await filing.folder_summaries(session, [f.id for f in subfolders])
    rights = abilities(caller.principal, client.id)
    move_choices: list[filing.FolderChoice] = []
    parent_choices: list[filing.FolderChoice] = []
    if folder is not None and rights["can_file"]:
        move_choices = await filing.folder_choices(session, client.id)
    if folder is not None and rights["can_file_folder"]:
        parent_choices = await filing.folder_choices(session, client.id, leaving_out=folder.id)
    # Drawn thumbnails stand in for the icons of images and PDFs (vault/thumbnail_worker.py).
    thumbs = await thumbnail_links(request, session, [d.id for d in documents])
    await folder_service.record_listed(
        session,
        audit_context(request, caller.principal),
        client.id,
        folder.id if folder else None,
    )
    return render(
        request,
        "folder.html" if folder else "client.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        client=client,
        folder=folder,
        crumbs=crumbs(client, chain),
        folders=subfolders,
        documents=documents,
        thumbs=thumbs,
        sort=sort,
        descending=descending,
        links=sort_links(request.url.path, sort, descending),
        notice=notice(request, FOLDER_NOTICES),
        held=await held_pages.held_rows(
            session, caller.principal, folder_id=folder.id if folder else None
        ),
        dropped=await drops.dropped_in_folder(session, caller.principal, folder.id)
        if folder
        else [],
        folder_error=folder_error,
        folder_name=folder_name,
        create_action=f"/folders/{folder.id}/folders"
        if folder
        else f"/clients/{client.id}/folders",
        share_panel=None
        if folder is None
        else await link_pages.panel(session, caller.principal, services(request), folder=folder),
        usage=await quotas.usage(
            session, client.id, default=services(request).settings.quotas.default_bytes
        ),
        summaries=summaries,
        move_choices=move_choices,
        parent_choices=parent_choices,
        problem=problem,
        moved_count=count_param(request),
        **rights,
    )
