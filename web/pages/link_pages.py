"""Share links on the document and folder pages: the list with copy and revoke, the form
that creates one within the client's link policy, and the page that shows a new link once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import documents as doc_service
from vault import link_policy, link_sending
from vault import links as link_service
from vault.db import transaction
from vault.errors import InvalidLinkError
from vault.link_rules import LinkKind, LinkSpec
from vault.lookalikes import shown_name
from vault.models import Document, Folder
from vault.policy import Principal, is_firm
from web import link_mail
from web.api.links import link_defaults, link_url
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import browser_caller, page, read_form, see_other
from web.pages.language import local_path
from web.pages.render import page_language, render
from web.services import Services

FORM_FIELDS = (
    "kind",
    "expires",
    "password",
    "recipient_email",
    "max_downloads",
    "max_files",
    "max_file_mib",
    "max_total_mib",
    "version",
    "send_to_recipient",
)
MiB = 1024 * 1024


async def panel(
    session: AsyncSession,
    principal: Principal,
    svc: Services,
    *,
    document: Document | None = None,
    folder: Folder | None = None,
) -> dict[str, Any] | None:
    """What the document or folder page shows of its links, or None to show nothing."""
    target = document or folder
    assert target is not None
    policy = await link_policy.effective(session, link_defaults(svc.settings), target.client_id)
    kinds = [LinkKind.DOWNLOAD] + ([LinkKind.UPLOAD] if folder is not None else [])
    creatable = [
        k for k in kinds if link_service.may_create(principal, target.client_id, k, policy)
    ]
    found = await link_service.list_links(
        session,
        principal,
        document_id=document.id if document else None,
        folder_id=folder.id if folder else None,
    )
    if not creatable and not found and not is_firm(principal):
        return None
    now = datetime.now(UTC)
    return {
        "links": [(link, link_service.state(link, now)) for link in found],
        "policy": policy,
        "kinds": [str(k) for k in creatable],
        "action": f"/documents/{target.id}/links" if document else f"/folders/{target.id}/links",
        "form": _defaults(svc, policy),
        "latest": (now + timedelta(days=policy.max_expiry_days)).date().isoformat(),
        "today": now.date().isoformat(),
        "here": f"/documents/{target.id}" if document else f"/folders/{target.id}",
        # A download link may pin one of the document's versions (newest first).
        "versions": [v.number for v in reversed(await doc_service.versions(session, document.id))]
        if document is not None
        else [],
    }


def _defaults(svc: Services, policy: link_policy.LinkDefaults) -> dict[str, str]:
    days = min(svc.settings.links.default_expiry_days, policy.max_expiry_days)
    expires = (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
    return {"kind": "download", "expires": expires} | dict.fromkeys(FORM_FIELDS[2:], "")


def _number(form: dict[str, str], name: str) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidLinkError(f"{name} must be a whole number", field=name)
    return int(raw)


def _mib(form: dict[str, str], name: str, field: str) -> int | None:
    """A size typed in whole MiB, as the byte count the link keeps (its error names `field`,
    the API's name, so the form marks the right input)."""
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidLinkError(f"{field} must be a whole number of MiB", field=field)
    return int(raw) * MiB


def _spec(form: dict[str, str]) -> LinkSpec:
    try:
        kind = LinkKind(form.get("kind", "download"))
    except ValueError:
        raise InvalidLinkError("kind is download or upload", field="kind") from None
    try:
        day = date.fromisoformat(form.get("expires", "").strip())
    except ValueError:
        raise InvalidLinkError("choose the day the link expires", field="expires_at") from None
    # The link works to the end of the chosen day (UTC).
    expires_at = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    upload = kind == LinkKind.UPLOAD
    return LinkSpec(
        kind=kind,
        expires_at=expires_at,
        password=form.get("password") or None,
        recipient_email=form.get("recipient_email", "").strip() or None,
        max_downloads=_number(form, "max_downloads") if kind == LinkKind.DOWNLOAD else None,
        max_files=_number(form, "max_files") if kind == LinkKind.UPLOAD else None,
        max_file_bytes=_mib(form, "max_file_mib", "max_file_bytes") if upload else None,
        max_total_bytes=_mib(form, "max_total_mib", "max_total_bytes") if upload else None,
        version=_number(form, "version") if not upload else None,
    )


async def _create(
    request: Request, *, document_id: uuid.UUID | None, folder_id: uuid.UUID | None
) -> Response:
    svc = services(request)
    form = await read_form(request)
    email_it = form.get("send_to_recipient") == "1"
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get("csrf_token", ""))
        context = audit_context(request, caller.principal)
        values = {name: form.get(name, "") for name in FORM_FIELDS}
        try:
            spec = _spec(form)
            if email_it and not spec.recipient_email:
                raise InvalidLinkError(
                    "give the recipient's email to send the link to", field="recipient_email"
                )
            defaults = link_defaults(svc.settings)
            if document_id is not None:
                link, token = await link_service.create_for_document(
                    session,
                    caller.principal,
                    context,
                    defaults=defaults,
                    hasher=svc.password_hasher,
                    document_id=document_id,
                    spec=spec,
                    max_file_bytes=svc.max_upload_size,
                )
            else:
                assert folder_id is not None
                link, token = await link_service.create_for_folder(
                    session,
                    caller.principal,
                    context,
                    defaults=defaults,
                    hasher=svc.password_hasher,
                    folder_id=folder_id,
                    spec=spec,
                    max_file_bytes=svc.max_upload_size,
                )
        except InvalidLinkError as exc:
            back = f"/documents/{document_id}" if document_id else f"/folders/{folder_id}"
            return render(
                request,
                "link-new.html",
                status=422,
                user=caller.user,
                csrf_token=caller.browser.csrf_token if caller.browser else "",
                error=exc.field,
                message=str(exc),
                action=request.url.path,
                back=back,
                form=values | {"password": ""},
                kinds=[values["kind"] or "download"],
                # Only the version asked for: the caller may not see the document at all.
                versions=[int(values["version"])]
                if document_id and values["version"].isdigit() and len(values["version"]) < 10
                else [],
            )
    url = link_url(svc.settings, token)
    # Sent once the link exists (committed above), and never queued: the token must not rest
    # in the database. The audit names the link and the recipient, never the address.
    sent: bool | None = None
    if email_it and link.recipient_email:
        user = caller.user
        sent = await link_mail.send_link(
            svc,
            link.recipient_email,
            url,
            upload=link.kind == LinkKind.UPLOAD,
            firm=svc.settings.links.firm_name or "ClientVault",
            sender=shown_name(user.display_name, user.email, user.role)
            if user is not None
            else caller.principal.email,
            expires_at=link_service.aware(link.expires_at),
            password=link.password_hash is not None,
            lang=page_language(request, {"user": user}),
        )
        async with transaction(svc.sessions) as session:
            await link_sending.record_sent(
                session, caller.principal, context, link.id, delivered=sent
            )
    back = f"/documents/{link.document_id}" if link.document_id else f"/folders/{link.folder_id}"
    return render(
        request,
        "link-created.html",
        user=caller.user,
        csrf_token=caller.browser.csrf_token if caller.browser else "",
        link=link,
        url=url,
        expires_at=link_service.aware(link.expires_at),
        back=back,
        sent=sent,
    )


@page
async def create_document_link(request: Request) -> Response:
    return await _create(
        request,
        document_id=parse_id(request.path_params["document_id"], "document"),
        folder_id=None,
    )


@page
async def create_folder_link(request: Request) -> Response:
    return await _create(
        request, document_id=None, folder_id=parse_id(request.path_params["folder_id"], "folder")
    )


@page
async def revoke_link(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    link_id = parse_id(request.path_params["link_id"], "link")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get("csrf_token", ""))
        await link_service.revoke(
            session, caller.principal, audit_context(request, caller.principal), link_id
        )
    return see_other(local_path(form.get("next", "/")) + "#share-links")


def routes() -> list[BaseRoute]:
    return [
        Route("/documents/{document_id}/links", create_document_link, methods=["POST"]),
        Route("/folders/{folder_id}/links", create_folder_link, methods=["POST"]),
        Route("/links/{link_id}/revoke", revoke_link, methods=["POST"]),
    ]
