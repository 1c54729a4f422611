"""The drop page of an upload-request link, `GET /s/{token}`: a visitor without an account
sends files into the link's folder with the same resumable uploader as signed-in users
(web/static/upload.js, through tus at /s/{token}/uploads), in their browser's language.

The page shows what the link accepts and nothing of what the folder holds. A link that is
unknown, expired, revoked, used up or protected and not unlocked answers the same 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import drops, links
from vault.db import transaction
from vault.links import LinkNotFoundError
from vault.models import Client, Folder
from web.api.links import link_defaults
from web.api.uploads import max_size
from web.context import services
from web.link_uploads import refused, unlocked, visitor_context
from web.pages.common import page
from web.pages.render import render


def routes() -> list[BaseRoute]:
    return [Route("/s/{token}", drop_page, methods=["GET"])]


@page
async def drop_page(request: Request) -> Response:
    svc = services(request)
    try:
        async with transaction(svc.sessions) as session:
            link = await drops.open_link(
                session,
                request.path_params["token"],
                defaults=link_defaults(svc.settings),
                continuing=False,
            )
            # The password or code is asked for by the link's own page (web.pages.links);
            # until then the drop page does not exist for this browser.
            if not await unlocked(session, request, link):
                raise LinkNotFoundError("locked", link)
            await drops.lender(session, link)
            client = await session.get_one(Client, link.client_id)
            assert link.folder_id is not None
            folder = await session.get_one(Folder, link.folder_id)
            await links.record(session, visitor_context(request), "link.viewed", link)
            largest = max_size(svc)
            if link.max_file_bytes is not None:
                largest = min(largest, link.max_file_bytes)
            return render(
                request,
                "drop.html",
                link=link,
                client_name=client.name,
                folder_name=folder.name,
                endpoint=f"/s/{request.path_params['token']}/uploads",
                largest=largest,
                files_left=None
                if link.max_files is None
                else max(0, link.max_files - link.files_received),
                bytes_left=None
                if link.max_total_bytes is None
                else max(0, link.max_total_bytes - link.bytes_received),
            )
    except LinkNotFoundError as exc:
        await refused(request, exc)
        raise
