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

from vault import accounts
from vault.accounts import mfa, profiles, reauth, sessions
from vault.audit.actions import AuditAction
from vault.db import transaction
from vault.errors import NotFoundError, WeakPasswordError
from vault.models import TokenScope
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.flows import signin as signin_flow
from web.ids import parse_id
from web.numbers import parse_int
from web.pages import account_settings
from web.pages.account_view import Problems, account_page
from web.pages.common import browser_caller, page, read_form, see_other
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
        await profiles.show_own(
            session, audit_context(request, caller.principal), caller.user, part="page"
        )
        return await account_page(request, session, caller)


async def _answer_refusal(
    request: Request, check: reauth.Check, problems: Problems, *, form: dict[str, str]
) -> Response:
    """The account page with the error of a refused password or code, in a new transaction
    (the refusal was counted and audited in its own)."""
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        status = 429 if check.locked_until is not None else 422
        response = await account_page(request, session, caller, status=status, problems=problems)
    if check.locked_until is not None:
        response.headers["Retry-After"] = str(signin_flow.retry_after_seconds(check))
    response.background = signin_flow.lockout_task(services(request), check)
    return response


def _locked_or(check: reauth.Check, error: str) -> str:
    return "locked" if check.locked_until is not None else error


@page
async def change_password(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    new = form.get("new_password", "")
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        if new != form.get("new_password_confirm", ""):
            error = "mismatch"
            return await account_page(
                request, session, caller, status=422, problems=Problems(password=error)
            )
    # Both Argon2 runs happen outside any transaction (issue 13 item 5).
    try:
        check = await reauth.change_password(
            svc.sessions,
            svc.password_hasher,
            audit_context(request, caller.principal),
            svc.signin_policy,
            caller.user,
            current=form.get("current_password", ""),
            new=new,
            keep_session=caller.browser.id,
        )
    except WeakPasswordError as exc:
        check, weak = reauth.Check(False), str(exc)
    else:
        weak = ""
    if not check.ok:
        error = weak or _locked_or(check, "wrong-current")
        return await _answer_refusal(request, check, Problems(password=error), form=form)
    response = see_other("/account?done=password-changed")
    response.background = signin_flow.password_changed_task(svc, caller.user, how="changed by you")
    return response


async def _password_confirmed(request: Request, caller: Caller, password: str) -> reauth.Check:
    svc = services(request)
    return await reauth.check_password(
        svc.sessions,
        svc.password_hasher,
        audit_context(request, caller.principal),
        svc.signin_policy,
        caller.user.id,
        password,
        action=AuditAction.AUTH_REAUTHENTICATE,
    )


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


def _token_days(raw: str, longest: int) -> int | None:
    return parse_int(raw.strip(), minimum=1, maximum=longest)


@page
async def create_token(request: Request) -> Response:
    """A new token, once the password (and a code from the app, where TOTP is on) is typed
    again; it lives at most `auth.token_max_days` (issue 13 item 4)."""
    form = await read_form(request)
    token_form = {
        "name": form.get("name", "")[: accounts.TOKEN_NAME_LENGTH],
        "scope": form.get("scope", ""),
        "days": form.get("days", ""),
    }
    svc = services(request)
    days = _token_days(token_form["days"], svc.settings.auth.token_max_days)
    scope = token_form["scope"]
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        if days is None or scope not in {s.value for s in TokenScope}:
            return await account_page(
                request,
                session,
                caller,
                status=422,
                problems=Problems(token="days" if days is None else "scope", token_form=token_form),
            )
    check = await _password_confirmed(request, caller, form.get("password", ""))
    if not check.ok:
        problems = Problems(token=_locked_or(check, "wrong-password"), token_form=token_form)
        return await _answer_refusal(request, check, problems, form=form)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
        context = audit_context(request, caller.principal)
        second = await reauth.check_second_factor(
            session,
            svc.keyring,
            context,
            svc.signin_policy,
            caller.user,
            form.get("code", ""),
            action=AuditAction.AUTH_REAUTHENTICATE,
        )
        if second.ok:
            token, secret = await accounts.create_token(
                session,
                context,
                caller.user,
                name=token_form["name"],
                scope=TokenScope(scope),
                expires_in=timedelta(days=days),
                clients_allowed=svc.settings.auth.client_tokens,
            )
            shown: dict[str, Any] = {
                "user": caller.user,
                "csrf_token": caller.browser.csrf_token,
                "token": token,
                "secret": secret,
            }
    if not second.ok:
        problems = Problems(token=_locked_or(second, "wrong-code"), token_form=token_form)
        return await _answer_refusal(request, second, problems, form=form)
    # Shown once: only its hash is kept.
    return render(request, "token-created.html", status=201, **shown)


@page
async def revoke_token(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        token_id = parse_id(request.path_params["token_id"], "token")
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
    check = await _password_confirmed(request, caller, form.get("password", ""))
    if not check.ok:
        problems = Problems(recovery=_locked_or(check, "wrong-password"))
        return await _answer_refusal(request, check, problems, form=form)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        assert caller.browser is not None
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
