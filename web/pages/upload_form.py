"""Uploading from the browser: the drag-and-drop panel (tus, in upload.js) and the plain
form that works without JavaScript.

The panel sends each file through the resumable upload API (`/api/v1/uploads`), so it needs
no route of its own. Without JavaScript the panel's form posts every chosen file in one
multipart body to `POST /folders/{folder_id}/upload`, streamed into the encryptor by
`web.multipart_upload`; the answer is a redirect back to the folder with a notice, or a page that
says which file was refused, why, and which files were stored before it.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault.errors import IncompleteUploadError, QuotaExceededError
from web.auth import Caller
from web.context import services
from web.ids import parse_id
from web.multipart_upload import FormUploadError, StoredFile, receive_upload
from web.pages.common import page, see_other
from web.pages.render import render


def routes() -> list[BaseRoute]:
    return [Route("/folders/{folder_id}/upload", upload, methods=["POST"])]


@page
async def upload(request: Request) -> Response:
    folder_id = parse_id(request.path_params["folder_id"], "folder")

    async def folder_for(_fields: dict[str, list[str]]) -> uuid.UUID:
        return folder_id

    try:
        caller, form = await receive_upload(request, folder_for=folder_for)
    except FormUploadError as exc:
        return _refused(
            request,
            folder_id=folder_id,
            rule=exc.rule or "",
            reason=exc.message,
            position=exc.position or 0,
            stored=exc.stored,
            caller=exc.caller,
            quota=exc.quota,
        )
    except IncompleteUploadError:
        # The browser went away or cut the body short: the file it was in was not stored,
        # and nobody is left to read a page.
        return render(request, "error.html", status=400)
    if not form.files:
        return _refused(
            request,
            folder_id=folder_id,
            rule="no_file",
            reason="",
            position=0,
            stored=[],
            caller=caller,
        )
    if any(stored.held for stored in form.files):
        return see_other(f"/folders/{folder_id}?done=held&count={len(form.files)}")
    return see_other(f"/folders/{folder_id}?done=uploaded&count={len(form.files)}")


def _refused(
    request: Request,
    *,
    folder_id: uuid.UUID,
    rule: str,
    reason: str,
    position: int,
    stored: list[StoredFile],
    caller: Caller | None,
    quota: QuotaExceededError | None = None,
) -> Response:
    # The rule picks the translated sentence; `reason` (English, from the naming rules) is
    # the fallback for a rule the page does not know.
    signed_in: dict[str, Any] = {}
    if caller is not None and caller.browser is not None:
        signed_in = {"user": caller.user, "csrf_token": caller.browser.csrf_token}
    return render(
        request,
        "upload-refused.html",
        status=413 if quota is not None else 422,
        quota=quota,
        **signed_in,
        folder_id=folder_id,
        rule=rule,
        reason=reason,
        position=position,
        stored=stored,
        max_size=services(request).max_upload_size,
    )
