"""The account page: profile, sessions, password, second factor and personal access tokens.

Every action is a plain form posted with the session's CSRF token, answered by a redirect
back to the page (so a reload does not repeat it), or by the page itself with the error
next to the form that caused it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from vault import accounts, mfa, sessions, signin
from vault.db import transaction
from vault.errors import NotFoundError
from vault.models import TokenScope
from vault.passwords import MIN_LENGTH, WeakPasswordError
from web import signin_flow
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render

ACCOUNT_NOTICES = frozenset(
    {"password-changed", "session-ended", "sessions-ended", "token-revoked", "totp-enrolled"}
)
DEFAULT_TOKEN_DAYS = 90


async def _account_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    status: int = 200,
    password_error: str = "",
    token_error: str = "",
    token_form: dict[str, str] | None = None,
) -> Response:
    assert caller.browser is not None
    svc = services(request)
    user = caller.user
    return render(
        request,
        "account.html",
        status=status,
        user=user,
        csrf_token=caller.browser.csrf_token,
        notice=notice(request, ACCOUNT_NOTICES),
        sessions=await sessions.live_sessions(session, user.id, policy=svc.session_policy),
        current_session=caller.browser.id,
        totp_enabled=await mfa.has_totp(session, user.id),
        recovery_codes_left=await mfa.remaining_recovery_codes(session, user.id),
        tokens=await accounts.list_tokens(session, user),
        min_length=MIN_LENGTH,
        max_token_days=accounts.MAX_TOKEN_DAYS,
        password_error=password_error,
        token_error=token_error,
        token_form=token_form
        or {"name": "", "scope": TokenScope.READ.value, "days": str(DEFAULT_TOKEN_DAYS)},
    )


@page
async def account(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session)
        return await _account_page(request, session, caller)


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
            return await _account_page(request, session, caller, status=422, password_error=error)
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
    try:
        days = int(raw.strip())
    except ValueError:
        return None
    return days if 1 <= days <= accounts.MAX_TOKEN_DAYS else None


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
            return await _account_page(
                request,
                session,
                caller,
                status=422,
                token_error="days" if days is None else "scope",
                token_form=token_form,
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
        try:
            token_id = uuid.UUID(request.path_params["token_id"])
        except ValueError:
            raise NotFoundError("no such token") from None
        await accounts.revoke_token(
            session, audit_context(request, caller.principal), caller.user, token_id
        )
    return see_other("/account?done=token-revoked")
