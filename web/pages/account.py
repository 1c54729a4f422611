"""The account page: sessions, password, second factor, recovery codes and personal access
tokens (profile, notifications and invitations are in `account_settings`).

Every action is a plain form posted with the session's CSRF token, answered by a redirect
back to the page (so a reload does not repeat it), or by the page itself with the error
next to the form that caused it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import accounts, mfa, sessions, signin
from vault.db import transaction
from vault.errors import NotFoundError
from vault.models import TokenScope
from vault.passwords import WeakPasswordError, off_loop, verify_password
from web import signin_flow
from web.auth import CSRF_FIELD
from web.context import audit_context, services
from web.numbers import parse_int
from web.pages import account_settings
from web.pages.account_view import Problems, account_page
from web.pages.common import browser_caller, page, path_id, read_form, see_other
from web.pages.render import render


def settings_routes() -> list[BaseRoute]:
    """The account page's forms beyond sign-in security: profile, notification emails,
    invitations and new recovery codes."""
    return [
        Route("/account/profile", account_settings.save_profile, methods=["POST"]),
        Route("/account/notifications", account_settings.save_notifications, methods=["POST"]),
        Route("/account/invite", account_settings.invite, methods=["POST"]),
        Route("/account/recovery-codes", new_recovery_codes, methods=["POST"]),
    ]


@page
async def account(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await account_page(request, session, caller)


@page
async def change_password(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    new = form.get("new_password", "")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        error = ""
        if new != form.get("new_password_confirm", ""):
            error = "mismatch"
        else:
            try:
                changed = await signin.change_password(
                    session,
                    svc.password_hasher,
                    audit_context(request, caller.principal),
                    caller.user,
                    current=form.get("current_password", ""),
                    new=new,
                    keep_session=caller.browser.id,
                )
            except WeakPasswordError as exc:
                error = str(exc)
            else:
                error = "" if changed else "wrong-current"
        if error:
            return await account_page(
                request, session, caller, status=422, problems=Problems(password=error)
            )
        user = caller.user
    response = see_other("/account?done=password-changed")
    response.background = signin_flow.password_changed_task(svc, user, how="changed by you")
    return response


@page
async def end_other_sessions(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        await sessions.end_others(
            session, audit_context(request, caller.principal), caller.user, caller.browser
        )
    return see_other("/account?done=sessions-ended")


@page
async def end_session(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        ended = await sessions.end_by_handle(
            session,
            audit_context(request, caller.principal),
            caller.user,
            request.path_params["handle"],
        )
        if not ended:
            raise NotFoundError("session not found")
    return see_other("/account?done=session-ended")


def _token_days(raw: str) -> int | None:
    return parse_int(raw.strip(), minimum=1, maximum=accounts.MAX_TOKEN_DAYS)


@page
async def create_token(request: Request) -> Response:
    form = await read_form(request)
    token_form = {
        "name": form.get("name", "")[: accounts.TOKEN_NAME_LENGTH],
        "scope": form.get("scope", ""),
        "days": form.get("days", ""),
    }
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        days = _token_days(token_form["days"])
        scope = token_form["scope"]
        if days is None or scope not in {s.value for s in TokenScope}:
            return await account_page(
                request,
                session,
                caller,
                status=422,
                problems=Problems(token="days" if days is None else "scope", token_form=token_form),
            )
        token, secret = await accounts.create_token(
            session,
            audit_context(request, caller.principal),
            caller.user,
            name=token_form["name"],
            scope=TokenScope(scope),
            expires_in=timedelta(days=days),
        )
        context: dict[str, Any] = {
            "user": caller.user,
            "csrf_token": caller.browser.csrf_token,
            "token": token,
            "secret": secret,
        }
    # Shown once: only its hash is kept.
    return render(request, "token-created.html", status=201, **context)


@page
async def revoke_token(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        token_id = path_id(request, "token_id")
        await accounts.revoke_token(
            session, audit_context(request, caller.principal), caller.user, token_id
        )
    return see_other("/account?done=token-revoked")


@page
async def new_recovery_codes(request: Request) -> Response:
    """Replace the recovery codes once the password is typed again (re-authentication before
    a sensitive change, ASVS V3.7.1): someone at a browser left signed in must not walk away
    with codes that skip the second factor wherever the password is known."""
    form = await read_form(request)
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        stored = caller.user.password_hash
        if stored is None or not await off_loop(
            verify_password, stored, form.get("password", ""), svc.password_hasher
        ):
            return await account_page(
                request, session, caller, status=422, problems=Problems(recovery="wrong-password")
            )
        if not await mfa.has_totp(session, caller.user.id):
            return await account_page(
                request, session, caller, status=409, problems=Problems(recovery="no-totp")
            )
        codes = await mfa.regenerate_recovery_codes(
            session, audit_context(request, caller.principal), caller.user
        )
        context: dict[str, Any] = {
            "user": caller.user,
            "csrf_token": caller.browser.csrf_token,
            "codes": codes,
            "regenerated": True,
        }
    # Shown once: only their hashes are kept.
    return render(request, "recovery-codes.html", **context)
