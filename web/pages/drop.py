"""The drop page of an upload-request link: what `GET /s/{token}` (web.pages.share) shows
for an upload link once it is unlocked. A visitor without an account sends files into the
link's folder with the same resumable uploader as signed-in users (web/static/upload.js,
through tus at /s/{token}/uploads), or the plain form without JavaScript, in their browser's
language. The page shows what the link accepts and nothing of what the folder holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vault import drops, links
from vault.links import Link
from vault.models import Client, Folder
from web.api.uploads import max_size
from web.services import Services


async def drop_values(
    session: AsyncSession, svc: Services, link: Link, token: str
) -> dict[str, Any]:
    """The drop page's context; `LinkNotFoundError` when the link's creator may no longer
    write the folder (the link lends that permission, so it dies with it)."""
    await drops.lender(session, link)
    client = await session.get_one(Client, link.client_id)
    assert link.folder_id is not None  # upload links lead into a folder
    folder = await session.get_one(Folder, link.folder_id)
    largest = max_size(svc)
    if link.max_file_bytes is not None:
        largest = min(largest, link.max_file_bytes)
    return {
        "link": link,
        "token": token,
        "client_name": client.name,
        "folder_name": folder.name,
        "endpoint": f"/s/{token}/uploads",
        "expires_at": links.aware(link.expires_at),
        "largest": largest,
        "files_left": None
        if link.max_files is None
        else max(0, link.max_files - link.files_received),
        "bytes_left": None
        if link.max_total_bytes is None
        else max(0, link.max_total_bytes - link.bytes_received),
    }
