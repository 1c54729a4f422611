"""Switching the language of the pages.

Anyone may choose a language: it is remembered in a cookie, and for a signed-in user also
in their profile, so that it follows them to other browsers and into their emails.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vault.accounts import profiles
from vault.accounts.identity import SessionStage
from vault.db import transaction
from web import i18n
from web.auth import check_csrf, check_origin, resolve
from web.context import audit_context, services
from web.errors import ProblemError
from web.pages.common import page, read_form, see_other


def local_path(target: str) -> str:
    """`target` if it is a path on this site, else home: never an open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@page
async def choose_language(request: Request) -> Response:
    form = await read_form(request)
    lang = i18n.supported(form.get("lang"))
    if lang is None:
        raise ProblemError(400, "Bad request", "unknown language")
    check_origin(request)
    async with transaction(services(request).sessions) as session:
        caller = await resolve(request, session)
        browser = caller.browser if caller is not None else None
        if caller is not None and browser is not None and browser.stage == SessionStage.FULL:
            check_csrf(request, browser, form.get("csrf_token", ""))
            await profiles.update_profile(
                session,
                audit_context(request, caller.principal),
                caller.user,
                supported_locales=frozenset(i18n.LANGUAGES),
                locale=lang,
            )
    response = see_other(local_path(form.get("next", "/")))
    response.set_cookie(
        i18n.COOKIE,
        lang,
        max_age=i18n.COOKIE_MAX_AGE,
        path="/",
        secure=services(request).settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response
