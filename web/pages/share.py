"""What a visitor without an account sees of a link: `/s/{token}` and its downloads.

Every route resolves the token first (one 404 page for unknown, expired, revoked and
exhausted links), then asks for what the link still needs (password, emailed code), and
only then reaches the document or folder through `vault.link_visits`, which keeps a folder
link inside its folder. Each view, download and refusal is audited with the link's id,
never its token. Pages send `Referrer-Policy: no-referrer`, so the token in the address
never leaves in a Referer header.

The forms here need no CSRF token: their address carries the link's 256-bit token, which a
forging site would have to know, and whoever knows it may use the link anyway. Browsers
send `Origin: null` under `no-referrer`, so only `Sec-Fetch-Site` is checked.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from vault import documents as doc_service
from vault import link_access, link_visits
from vault import links as link_service
from vault.accounts.ratelimit import Limits
from vault.audit import AuditContext
from vault.db import transaction
from vault.errors import LinkNotFoundError
from vault.links import Link, LinkKind
from web import content, i18n, link_mail
from web.api.documents import DOWNLOAD_CSP, INLINE_SAFE
from web.api.links import link_defaults
from web.context import audit_context, services
from web.folder_zip import Member, archive
from web.http import content_disposition
from web.pages import drop
from web.pages.common import read_form
from web.pages.render import render
from web.refusals import audit_refusal
from web.services import Services

GRANT_COOKIE = "cv_link"
SHARE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


def _context(request: Request) -> AuditContext:
    return dataclasses.replace(audit_context(request), actor_role=link_service.VISITOR)


def _token(request: Request) -> str:
    token: str = request.path_params["token"]
    return token


def _optional_id(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise LinkNotFoundError("bad_id") from None


def _firm(svc: Services) -> str:
    return svc.settings.links.firm_name or "ClientVault"


def _page(request: Request, template: str, *, status: int = 200, **values: Any) -> Response:
    # The firm's name keeps its own direction inside a translated sentence.
    firm = Markup("<bdi>{}</bdi>").format(_firm(services(request)))
    response = render(request, template, status=status, firm=firm, **values)
    response.headers.update(SHARE_HEADERS)
    return response


def _gone_page(request: Request) -> Response:
    """The one answer for every link that is not usable: the same page, whatever the cause."""
    return _page(request, "share-gone.html", status=404)


async def _gone(request: Request, exc: LinkNotFoundError) -> Response:
    """`_gone_page`, with the refusal recorded (its own transaction: the request's rolled
    back with the error)."""
    svc = services(request)
    if exc.link is not None:
        async with transaction(svc.sessions) as session:
            await link_visits.record_refusal(session, _context(request), exc.link, exc.reason)
    else:
        await audit_refusal(request, 404)
    return _gone_page(request)


def guess_limits(svc: Services) -> link_access.GuessLimits:
    links = svc.settings.links
    auth = svc.settings.auth
    window = timedelta(minutes=auth.failure_window_minutes)
    lockout = timedelta(minutes=auth.lockout_minutes)
    longest = timedelta(minutes=auth.max_lockout_minutes)
    return link_access.GuessLimits(
        link=Limits(links.max_failures, window, lockout, longest),
        address=Limits(links.address_max_failures, window, lockout, longest),
    )


def mask(email: str) -> str:
    """`a•••@example.com`: enough for the recipient to recognise, little for anyone else."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}•••@{domain}"


def _set_grant(request: Request, response: Response, unlock: link_access.Unlock) -> None:
    svc = services(request)
    assert unlock.secret is not None
    response.set_cookie(
        GRANT_COOKIE,
        unlock.secret,
        max_age=svc.settings.links.unlock_minutes * 60,
        # Sent only with this link's own addresses; bound to the link in the database too.
        path=f"/s/{_token(request)}",
        secure=svc.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def _unlock_page(
    request: Request, link: Link, missing: frozenset[str], *, status: int = 200, **values: Any
) -> Response:
    return _page(
        request,
        "share-unlock.html",
        status=status,
        token=_token(request),
        needs_password=link_access.PASSWORD in missing,
        needs_code=link_access.CODE in missing,
        recipient=mask(link.recipient_email or ""),
        **{"error": "", "code_sent": False, "locked_until": None, **values},
    )


async def share_page(request: Request) -> Response:
    svc = services(request)
    lang = i18n.supported(request.query_params.get("lang"))
    if lang is not None:
        # The language chooser of these pages is a GET form: a POST would carry `Origin:
        # null` under no-referrer. The choice is kept in the same cookie as everywhere.
        # Quoted: the token is not checked yet, and must not write into the header.
        target = f"/s/{quote(_token(request), safe='')}"
        response = Response(status_code=303, headers={"Location": target})
        response.set_cookie(
            i18n.COOKIE,
            lang,
            max_age=i18n.COOKIE_MAX_AGE,
            path="/",
            secure=svc.settings.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response
    try:
        folder_id = _optional_id(request.query_params.get("folder"))
        async with transaction(svc.sessions) as session:
            link = await link_service.resolve(
                session, _token(request), defaults=link_defaults(svc.settings)
            )
            missing = await link_access.missing(session, link, request.cookies.get(GRANT_COOKIE))
            if missing:
                await link_visits.record_view(session, _context(request), link, locked=True)
                return _unlock_page(request, link, missing)
            if link.kind == LinkKind.UPLOAD:
                dropping = await drop.drop_values(session, svc, link, _token(request))
                await link_visits.record_view(session, _context(request), link)
                return _page(request, "drop.html", **dropping)
            values: dict[str, Any] = {}
            if link.document_id is not None:
                document, version = await link_visits.scoped_document(session, link, None)
                values.update(document=document, version=version)
            else:
                view = await link_visits.folder_view(session, link, folder_id)
                values.update(view=view)
            await link_visits.record_view(session, _context(request), link, folder_id=folder_id)
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    return _page(
        request,
        "share.html",
        token=_token(request),
        link=link,
        expires_at=link_service.aware(link.expires_at),
        remaining=(
            None if link.max_downloads is None else max(link.max_downloads - link.downloads, 0)
        ),
        **values,
    )


def _refuse_cross_site(request: Request) -> None:
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise LinkNotFoundError("cross_site")


async def password_submit(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    context = _context(request)
    try:
        _refuse_cross_site(request)
        unlock = await link_access.unlock_with_password(
            svc.sessions,
            context,
            token=_token(request),
            password=form.get("password", "")[:1024],
            secret=request.cookies.get(GRANT_COOKIE),
            defaults=link_defaults(svc.settings),
            hasher=svc.password_hasher,
            limits=guess_limits(svc),
            ttl=timedelta(minutes=svc.settings.links.unlock_minutes),
        )
        if unlock.secret is None:
            async with transaction(svc.sessions) as session:
                link = await link_service.resolve(
                    session, _token(request), defaults=link_defaults(svc.settings)
                )
                missing = await link_access.missing(
                    session, link, request.cookies.get(GRANT_COOKIE)
                )
            return _unlock_page(
                request,
                link,
                missing,
                status=429 if unlock.locked_until else 400,
                error="locked" if unlock.locked_until else "password",
                locked_until=unlock.locked_until,
            )
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    response = Response(status_code=303, headers={"Location": f"/s/{_token(request)}"})
    _set_grant(request, response, unlock)
    return response


async def code_send(request: Request) -> Response:
    svc = services(request)
    await read_form(request)
    context = _context(request)
    lang = i18n.negotiate(request)
    try:
        _refuse_cross_site(request)
        async with transaction(svc.sessions) as session:
            link = await link_service.resolve(
                session, _token(request), defaults=link_defaults(svc.settings)
            )
            missing = await link_access.missing(session, link, request.cookies.get(GRANT_COOKIE))
            code = await link_access.send_code(
                session,
                context,
                link,
                keyring=svc.keyring,
                valid_for=timedelta(minutes=svc.settings.links.code_valid_minutes),
            )
        if code is not None and link.recipient_email is not None:
            # Sent straight away, never queued: the code must not rest in the database.
            await link_mail.send_code(
                svc,
                link.recipient_email,
                code,
                firm=_firm(svc),
                lang=lang,
                minutes=svc.settings.links.code_valid_minutes,
            )
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    if code is None:
        return _unlock_page(request, link, missing, status=429, error="too_many_codes")
    return _unlock_page(request, link, missing, code_sent=True)


async def code_submit(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    context = _context(request)
    try:
        _refuse_cross_site(request)
        async with transaction(svc.sessions) as session:
            link = await link_service.resolve(
                session, _token(request), defaults=link_defaults(svc.settings)
            )
            unlock = await link_access.unlock_with_code(
                session,
                context,
                link,
                code=form.get("code", "")[:64],
                keyring=svc.keyring,
                secret=request.cookies.get(GRANT_COOKIE),
                limits=guess_limits(svc),
                ttl=timedelta(minutes=svc.settings.links.unlock_minutes),
            )
            missing = await link_access.missing(session, link, request.cookies.get(GRANT_COOKIE))
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    if unlock.secret is None:
        return _unlock_page(
            request,
            link,
            missing,
            status=429 if unlock.locked_until else 400,
            error="locked" if unlock.locked_until else "code",
            locked_until=unlock.locked_until,
            code_sent=True,
        )
    response = Response(status_code=303, headers={"Location": f"/s/{_token(request)}"})
    _set_grant(request, response, unlock)
    return response


async def _open(request: Request, session: AsyncSession, *, kind: LinkKind | None) -> Link | None:
    """The usable link of the request if this browser unlocked it; None (the refusal
    recorded) while it still needs a password or code; `LinkNotFoundError` if unusable."""
    svc = services(request)
    link = await link_service.resolve(
        session, _token(request), defaults=link_defaults(svc.settings), kind=kind
    )
    if await link_access.missing(session, link, request.cookies.get(GRANT_COOKIE)):
        await link_visits.record_refusal(session, _context(request), link, "locked")
        return None
    return link


def _to_page(request: Request) -> Response:
    return Response(status_code=303, headers={"Location": f"/s/{_token(request)}"})


async def _serve_document(request: Request, document_id: uuid.UUID | None) -> Response:
    """A document's bytes through the link, `Range` as the API serves them."""
    svc = services(request)
    context = _context(request)
    try:
        async with transaction(svc.sessions) as session:
            link = await _open(request, session, kind=LinkKind.DOWNLOAD)
            if link is None:
                return _to_page(request)
            document, version = await link_visits.scoped_document(session, link, document_id)
            part = content.plan(
                request,
                version,
                {
                    "Content-Disposition": content_disposition(document.name),
                    "Content-Security-Policy": DOWNLOAD_CSP,
                    **SHARE_HEADERS,
                },
            )
            if isinstance(part, Response):
                return part
            if request.method == "HEAD":
                return Response(status_code=part.status, headers=part.headers)
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    opened = doc_service.open_version(svc.keyring, document, version)
    # Read before the download is counted, so a store that is down costs no download, and
    # between two transactions, not in one: on SQLite every transaction holds the database's
    # write lock, which no request of any process would get while the store answered.
    opening = await content.open_stream(svc, version, opened, part, read_first=True)
    try:
        async with transaction(svc.sessions) as session:
            # The link is opened again where the download is counted: one revoked, expired
            # or locked meanwhile admits nothing, as if the visitor had come a moment later.
            link = await _open(request, session, kind=LinkKind.DOWNLOAD)
            admitted = link is not None and await link_visits.admit_download(
                session,
                context,
                link,
                document_id=document.id,
                version=version.number,
                via="file",
                range_=part.range,
                size=part.end - part.start,
            )
    except LinkNotFoundError as exc:
        await opening.close()
        return await _gone(request, exc)
    except BaseException:
        await opening.close()
        raise
    if link is None:
        await opening.close()
        return _to_page(request)
    if not admitted:
        await opening.close()
        return _gone_page(request)  # the refusal is recorded with the count that refused it
    media = (
        version.content_type if version.content_type in INLINE_SAFE else "application/octet-stream"
    )
    return content.stream(svc, document, version, opening, part, context, media_type=media)


async def document_content(request: Request) -> Response:
    return await _serve_document(request, None)


async def folder_file(request: Request) -> Response:
    try:
        document_id = _optional_id(request.path_params["document_id"])
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    return await _serve_document(request, document_id)


async def folder_zip(request: Request) -> Response:
    """The link's folder (or one below it) as a streamed ZIP archive: one download."""
    svc = services(request)
    context = _context(request)
    try:
        folder_id = _optional_id(request.query_params.get("folder"))
        async with transaction(svc.sessions) as session:
            link = await _open(request, session, kind=LinkKind.DOWNLOAD)
            if link is None:
                return _to_page(request)
            entries = await link_visits.archive_entries(session, link, folder_id)
            root = entries[0].folder
            headers = {
                "Content-Disposition": content_disposition(f"{root.name}.zip"),
                "Content-Security-Policy": DOWNLOAD_CSP,
                "Cache-Control": "private, no-store",
                **SHARE_HEADERS,
            }
            if request.method == "HEAD":
                return Response(media_type="application/zip", headers=headers)
            members = [_member(svc, entry) for entry in entries]
            files = [m for m in members if m.opened is not None]
            admitted = await link_visits.admit_download(
                session,
                context,
                link,
                document_id=None,
                version=None,
                via="zip",
                size=sum(m.size for m in files),
            )
    except LinkNotFoundError as exc:
        return await _gone(request, exc)
    if not admitted:
        return _gone_page(request)
    return StreamingResponse(
        archive(svc.store, members), media_type="application/zip", headers=headers
    )


def _member(svc: Services, entry: Any) -> Member:
    if entry.document is None or entry.version is None:
        return Member(entry.path, entry.folder.created_at)
    document, version = entry.document, entry.version
    return Member(
        entry.path,
        version.created_at,
        document_id=document.id,
        version_id=version.id,
        number=version.number,
        size=version.size,
        content_type=version.content_type,
        storage_key=version.storage_key,
        object_size=version.object_size,
        opened=doc_service.open_version(svc.keyring, document, version),
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/s/{token}", share_page, methods=["GET"]),
        Route("/s/{token}/password", password_submit, methods=["POST"]),
        Route("/s/{token}/code", code_send, methods=["POST"]),
        Route("/s/{token}/code/verify", code_submit, methods=["POST"]),
        Route("/s/{token}/content", document_content, methods=["GET"]),
        Route("/s/{token}/files/{document_id}", folder_file, methods=["GET"]),
        Route("/s/{token}/download.zip", folder_zip, methods=["GET"]),
    ]
