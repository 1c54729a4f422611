"""Staff publishing: one report, or several, to one client or to many at once.

The form's fields come in the order the server needs them: the CSRF token, the chosen
clients, the folder and the message, then the files. So by the time the first file part
arrives everything else is known: the file streams into the first client's folder (the chosen
path, created where missing, `vault.destinations`) through `web.multipart_upload`, and is then
copied to every
further client by `vault.publishing`, decrypted and re-encrypted under that client's keys.
Each client's copy is audited like an upload with the message, so each client's members
are emailed. The answer is a page listing, per client, what was published or what failed.

With JavaScript (upload.js) the files go up by resumable upload instead, with progress: the
form's fields are posted first with `prepare` (answered in JSON with the first client's
folder, created if missing, or the field errors), each file is uploaded into that folder
through the tus API, and the form is then posted with the uploaded documents' ids in
`uploaded` and no file; from there on it is the same as above.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from vault import destinations, publishing
from vault import folders as folder_service
from vault.audit import AuditContext
from vault.db import transaction
from vault.errors import IncompleteUploadError, InvalidMessageError, InvalidNameError, NotFoundError
from vault.models import Client
from vault.names import name_key, validate_name
from vault.policy import Permission, Principal, allows, is_firm
from web.auth import Caller, resolve
from web.context import audit_context, services
from web.ids import parse_id
from web.multipart_upload import FormUploadError, StoredFile, receive_upload
from web.pages.common import Redirect, browser_caller, page
from web.pages.render import render

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = "Reports"


def routes() -> list[BaseRoute]:
    return [
        Route("/publish", publish_form, methods=["GET"]),
        Route("/publish", publish, methods=["POST"]),
    ]


async def publishable_clients(
    session: AsyncSession, principal: Principal, context: AuditContext | None = None
) -> list[Client]:
    """The clients the caller may publish into, by name."""
    if not is_firm(principal):
        return []
    clients = await folder_service.list_clients(session, principal, context=context)
    return [c for c in clients if allows(principal, Permission.UPLOAD, c.id)]


@dataclass
class PublishForm:
    """What the form said, checked: the target clients in order, the folder, the message.

    The folder is a path picked from the clients' combined tree (`folder`, empty for the top
    level) and, optionally, the name of a new folder inside it (`new_folder`); `path` is the
    two together, checked.
    """

    chosen: list[str] = field(default_factory=list)
    all_clients: bool = False
    folder: str = DEFAULT_FOLDER
    new_folder: str = ""
    message: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    targets: list[Client] = field(default_factory=list)
    path: list[str] = field(default_factory=list)

    @property
    def shown_path(self) -> str:
        return " › ".join(self.path)


def _check_path(form: PublishForm) -> None:
    picked = form.folder.strip().strip(destinations.SEPARATOR)
    new = form.new_folder.strip()
    if not picked and not new:
        form.errors["folder"] = "empty"
        return
    try:
        form.path = destinations.parse_path(picked) if picked else []
    except InvalidNameError:
        form.errors["folder"] = "invalid"
        return
    if new:
        try:
            # One name: a slash here is a mistake, not a way to make several folders.
            form.path.append(validate_name(new))
        except InvalidNameError:
            form.errors["new_folder"] = "invalid"
            return
    if len(form.path) > destinations.MAX_DEPTH:
        form.errors["new_folder"] = "deep"


def check_form(lists: dict[str, list[str]], clients: list[Client]) -> PublishForm:
    form = PublishForm(
        chosen=[v for v in lists.get("clients", []) if v],
        all_clients=bool(lists.get("all")),
        folder=(lists.get("folder") or [""])[0],
        new_folder=(lists.get("new_folder") or [""])[0],
        message=(lists.get("message") or [""])[0],
    )
    by_id = {str(c.id): c for c in clients}
    # "All my clients": the caller's clients, not the firm's shared resources.
    wanted = {str(c.id) for c in clients if not c.shared} if form.all_clients else set()
    unknown = [v for v in form.chosen if v not in by_id]
    wanted |= {v for v in form.chosen if v in by_id}
    if unknown:
        form.errors["clients"] = "unknown"
    elif not wanted:
        form.errors["clients"] = "empty"
    form.targets = [c for c in clients if str(c.id) in wanted]
    _check_path(form)
    try:
        form.message = publishing.clean_message(form.message)
    except InvalidMessageError as exc:
        form.errors["message"] = exc.code
    return form


class _Refused(FormUploadError):
    """The form's fields were wrong: refused before the first file byte is stored."""

    def __init__(self, form: PublishForm, caller: Caller) -> None:
        super().__init__("the publishing form is incomplete", stored=[], rule="form", caller=caller)
        self.form = form
        self.refused_for = caller


def _folder_choices(
    tree: list[destinations.TreeFolder], form: PublishForm
) -> tuple[list[destinations.TreeFolder], str]:
    """The tree to pick from, with the form's folder in it even where no client has it yet
    (the default "Reports", or a path sent back with an error), and the value to select."""
    try:
        picked = tuple(destinations.parse_path(form.folder)) if form.folder.strip() else ()
    except InvalidNameError:
        return tree, ""
    by_key = {tuple(name_key(n) for n in folder.path): folder for folder in tree}
    spelled: tuple[str, ...] = ()
    for name in picked:
        # Folders are matched as names are (case and form aside): the tree's spelling wins.
        path = (*spelled, name)
        key = tuple(name_key(n) for n in path)
        folder = by_key.setdefault(key, destinations.TreeFolder(path, frozenset()))
        spelled = folder.path
    return [by_key[key] for key in sorted(by_key)], destinations.join_path(spelled)


async def _form_page(
    request: Request,
    caller: Caller,
    clients: list[Client],
    form: PublishForm,
    *,
    status: int = 200,
) -> Response:
    assert caller.browser is not None
    async with transaction(services(request).sessions) as session:
        tree = await destinations.combined_tree(session, caller.principal, [c.id for c in clients])
    folders, picked = _folder_choices(tree, form)
    return render(
        request,
        "publish.html",
        status=status,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        clients=clients,
        form=form,
        folders=folders,
        picked=picked,
        separator=destinations.SEPARATOR,
        max_depth=destinations.MAX_DEPTH,
        max_message=publishing.MAX_MESSAGE,
    )


@page
async def publish_form(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        if not is_firm(caller.principal):
            raise NotFoundError("no such page")
        clients = await publishable_clients(
            session, caller.principal, audit_context(request, caller.principal)
        )
    return await _form_page(request, caller, clients, PublishForm())


@dataclass
class ClientResult:
    client: Client
    files: list[StoredFile] = field(default_factory=list)
    failed: bool = False


@page
async def publish(request: Request) -> Response:
    svc = services(request)
    state: dict[str, Any] = {}

    async def folder_for(lists: dict[str, list[str]]) -> uuid.UUID:
        if "folder_id" in state:
            return uuid.UUID(str(state["folder_id"]))
        folder_id: uuid.UUID | None = None
        async with transaction(svc.sessions) as session:
            caller = await resolve(request, session)  # receive_upload checked its CSRF token
            if caller is None:
                raise Redirect("/login")
            clients = await publishable_clients(session, caller.principal)
            form = check_form(lists, clients)
            if is_firm(caller.principal) and not form.errors:
                folder = await destinations.folder_at_path(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    client_id=form.targets[0].id,
                    path=form.path,
                )
                folder_id = folder.id
        # Raised outside the transaction: a rollback would expire the caller's rows.
        if not is_firm(caller.principal):
            raise FormUploadError("not found", stored=[], rule="not_found")
        state.update(caller=caller, clients=clients, form=form)
        if folder_id is None:
            raise _Refused(form, caller)
        state["folder_id"] = folder_id
        return folder_id

    def details(lists: dict[str, list[str]]) -> dict[str, str] | None:
        form: PublishForm = state["form"]
        return {"message": form.message} if form.message else None

    try:
        # Not held: the copies to the other clients are made from the first at once, and
        # only staff publish.
        caller, upload = await receive_upload(
            request, folder_for=folder_for, details=details, hold=False
        )
    except _Refused as exc:
        return await _form_page(request, exc.refused_for, state["clients"], exc.form, status=422)
    except FormUploadError as exc:
        if exc.rule == "not_found" or exc.caller is None:
            raise NotFoundError("no such page") from None
        return _partial(request, exc, state)
    except IncompleteUploadError:
        return render(request, "error.html", status=400)
    if not upload.files:
        async with transaction(svc.sessions) as session:
            if not is_firm(caller.principal):
                raise NotFoundError("no such page")
            clients = await publishable_clients(session, caller.principal)
            form = check_form(upload.lists, clients)
            if upload.lists.get("prepare"):
                return await _prepared(request, session, caller, form)
            sent = [v for v in upload.lists.get("uploaded", []) if v]
            files = await _sent_ahead(request, session, caller, form, sent) if sent else []
        if not files:
            form.errors.setdefault("files", "empty")
            return await _form_page(request, caller, clients, form, status=422)
    else:
        form = state["form"]
        files = list(upload.files)
    results = [ClientResult(form.targets[0], list(files))]
    for client in form.targets[1:]:
        results.append(await _copy_to(request, caller, client, form, files))
    return render(
        request,
        "publish-result.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token if caller.browser else "",
        results=results,
        form=form,
        files=files,
    )


async def _prepared(
    request: Request, session: AsyncSession, caller: Caller, form: PublishForm
) -> Response:
    """The first client's folder for the files the page is about to upload, or the errors
    (the page then posts the form without its files to show them)."""
    if form.errors:
        return JSONResponse({"errors": form.errors}, status_code=422)
    folder = await destinations.folder_at_path(
        session,
        caller.principal,
        audit_context(request, caller.principal),
        client_id=form.targets[0].id,
        path=form.path,
    )
    return JSONResponse({"folder_id": str(folder.id)})


async def _sent_ahead(
    request: Request, session: AsyncSession, caller: Caller, form: PublishForm, sent: list[str]
) -> list[StoredFile]:
    """The files uploaded ahead into the first client's folder, as the form names them."""
    if form.errors:
        return []
    folder = await destinations.folder_at_path(
        session,
        caller.principal,
        audit_context(request, caller.principal),
        client_id=form.targets[0].id,
        path=form.path,
    )
    files: list[StoredFile] = []
    for value in dict.fromkeys(sent):
        report = await publishing.uploaded_report(
            session, caller.principal, document_id=parse_id(value, "document"), folder_id=folder.id
        )
        files.append(StoredFile(report.name, report.document_id, report.version, report.size))
    return files


async def _copy_to(
    request: Request,
    caller: Caller,
    client: Client,
    form: PublishForm,
    files: list[StoredFile],
) -> ClientResult:
    """Copy every stored file into `client`'s folder; a failure stops this client only."""
    svc = services(request)
    context = audit_context(request, caller.principal)
    result = ClientResult(client)
    try:
        async with transaction(svc.sessions) as session:
            folder = await destinations.folder_at_path(
                session, caller.principal, context, client_id=client.id, path=form.path
            )
        for stored in files:
            assert stored.version is not None  # received with hold=False: never held
            copy = await publishing.publish_copy(
                svc.sessions,
                svc.store,
                svc.keyring,
                caller.principal,
                context,
                document_id=stored.document_id,
                version=stored.version,
                folder_id=folder.id,
                part_size=svc.part_size,
                concurrency=svc.settings.storage.concurrency,
                message=form.message,
                default_quota=svc.settings.quotas.default_bytes,
            )
            result.files.append(StoredFile(stored.name, copy.document_id, copy.version, copy.size))
    except Exception:
        # One client's failure (its store, a name clash) must not stop the others; the
        # page says which clients did not get the files.
        logger.exception("publishing to client %s failed", client.id)
        result.failed = True
    return result


def _partial(request: Request, exc: FormUploadError, state: dict[str, Any]) -> Response:
    """A file was refused part-way (its name, its size): say which, and what was stored."""
    caller = exc.caller
    assert caller is not None and caller.browser is not None
    form: PublishForm = state["form"]
    return render(
        request,
        "publish-result.html",
        status=422,
        user=caller.user,
        csrf_token=caller.browser.csrf_token,
        results=[ClientResult(form.targets[0], list(exc.stored))],
        form=form,
        files=exc.stored,
        refused=exc.rule or "refused",
        position=exc.position or 0,
    )
