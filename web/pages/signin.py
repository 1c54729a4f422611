"""Pages of signing in and out, the second factor, TOTP enrolment, invitations and resets.

The forms before a session exists (sign-in, reset, invitation) have no CSRF token to carry:
`check_origin` and the SameSite=Lax cookie stop them being posted from another site.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vault.accounts import mfa
from vault.accounts.identity import EmailLinkPurpose, SessionStage
from vault.accounts.passwords import MIN_LENGTH
from vault.accounts.signin import Attempt, Outcome
from vault.db import transaction
from vault.errors import ConflictError, MfaError, WeakPasswordError
from web.auth import CSRF_FIELD, check_origin, clear_session_cookie, resolve, set_session_cookie
from web.context import audit_context, services
from web.flows import signin as signin_flow
from web.pages.common import ANY_STAGE, Redirect, browser_caller, notice, page, read_form, see_other
from web.pages.render import render

SECOND_FACTOR = frozenset({SessionStage.SECOND_FACTOR})
ENROLLING = frozenset({SessionStage.ENROL, SessionStage.FULL})
LOGIN_NOTICES = frozenset({"password-set", "password-reset", "signed-out"})


def _locked(attempt: Attempt) -> dict[str, Any]:
    seconds = signin_flow.retry_after_seconds(attempt)
    return {"wait_seconds": seconds, "wait_minutes": -(-seconds // 60)}


# Password step ------------------------------------------------------------------------------


@page
async def login_form(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await resolve(request, session)
    if caller is not None and caller.browser is not None:
        raise Redirect(signin_flow.NEXT_STEP[SessionStage(caller.browser.stage)])
    return render(
        request,
        "login.html",
        email="",
        error="",
        notice=notice(request, LOGIN_NOTICES),
    )


@page
async def login_submit(request: Request) -> Response:
    check_origin(request)
    form = await read_form(request)
    email = form.get("email", "").strip()
    attempt, started = await signin_flow.sign_in(request, email, form.get("password", ""))
    if started is None:
        if attempt.outcome is Outcome.LOCKED:
            locked = _locked(attempt)
            return render(
                request,
                "login.html",
                status=429,
                headers={"Retry-After": str(locked["wait_seconds"])},
                email=email,
                error="locked",
                notice="",
                **locked,
            )
        # One message for an unknown address and a wrong password: no account oracle.
        return render(
            request,
            "login.html",
            status=400,
            background=signin_flow.lockout_task(services(request), attempt),
            email=email,
            error="refused",
            notice="",
        )
    response = see_other(signin_flow.NEXT_STEP[started.row.stage])
    set_session_cookie(request, response, started.secret)
    return response


# Second factor ------------------------------------------------------------------------------


@page
async def totp_form(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, stages=SECOND_FACTOR)
    assert caller.browser is not None
    return render(
        request, "totp.html", partial=True, csrf_token=caller.browser.csrf_token, error=""
    )


@page
async def totp_submit(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(
            request, session, stages=SECOND_FACTOR, csrf_token=form.get(CSRF_FIELD, "")
        )
        attempt, started = await signin_flow.second_factor(
            request, session, caller, form.get("code", "")
        )
    assert caller.browser is not None
    if started is None:
        context: dict[str, Any] = {"partial": True, "csrf_token": caller.browser.csrf_token}
        if attempt.outcome is Outcome.LOCKED:
            locked = _locked(attempt)
            return render(
                request,
                "totp.html",
                status=429,
                headers={"Retry-After": str(locked["wait_seconds"])},
                error="locked",
                **context,
                **locked,
            )
        return render(
            request,
            "totp.html",
            status=400,
            background=signin_flow.lockout_task(services(request), attempt),
            error="refused",
            **context,
        )
    response = see_other("/")
    set_session_cookie(request, response, started.secret)
    return response


# TOTP enrolment -----------------------------------------------------------------------------


@page
async def enrol_form(request: Request) -> Response:
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, stages=ENROLLING)
        assert caller.browser is not None
        try:
            # Each visit starts over with a new secret: only the newest one shown can be
            # confirmed, so a secret seen on an old screen is worth nothing.
            enrolment = await mfa.begin_enrolment(
                session, svc.keyring, caller.user, audit_context(request, caller.principal)
            )
        except ConflictError:
            enrolment = None
    context: dict[str, Any] = {
        "partial": caller.browser.stage != SessionStage.FULL,
        "user": caller.user,
        "csrf_token": caller.browser.csrf_token,
        "error": "",
    }
    if enrolment is None:
        return render(request, "enrol.html", status=409, enrolment=None, **context)
    return render(request, "enrol.html", enrolment=enrolment, **context)


@page
async def enrol_submit(request: Request) -> Response:
    form = await read_form(request)
    csrf_field = form.get(CSRF_FIELD, "")
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, stages=ENROLLING, csrf_token=csrf_field)
    assert caller.browser is not None
    partial = caller.browser.stage != SessionStage.FULL
    csrf_token = caller.browser.csrf_token
    # From a signed-in session the password is asked again (issue 13 item 8), outside any
    # transaction (item 5).
    check = await signin_flow.enrolment_password(request, caller, form.get("password", ""))
    codes, started, error = None, None, "refused"
    if not check.ok:
        error = "locked" if check.locked_until is not None else "wrong-password"
    else:
        async with transaction(services(request).sessions) as session:
            caller = await browser_caller(request, session, stages=ENROLLING, csrf_token=csrf_field)
            try:
                codes, started = await signin_flow.confirm_enrolment(
                    request, session, caller, form.get("code", "")
                )
            except MfaError:
                codes, started = None, None
    if codes is None:
        # The pending secret stays as it was: the user corrects the code from the app they
        # just set up, or starts over with a new QR code.
        return render(
            request,
            "enrol.html",
            status=429 if error == "locked" else 400,
            background=signin_flow.lockout_task(services(request), check),
            enrolment=None,
            partial=partial,
            user=caller.user,
            csrf_token=csrf_token,
            error=error,
        )
    response = render(
        request,
        "recovery-codes.html",
        user=caller.user,
        csrf_token=started.row.csrf_token if started else csrf_token,
        codes=codes,
    )
    if started is not None:
        set_session_cookie(request, response, started.secret)
    return response


# Signing out ----------------------------------------------------------------------------------


@page
async def logout(request: Request) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(
            request, session, stages=ANY_STAGE, csrf_token=form.get(CSRF_FIELD, "")
        )
        await signin_flow.sign_out(request, session, caller)
    response = see_other("/login?done=signed-out")
    clear_session_cookie(request, response)
    return response


# Invitations and password resets ------------------------------------------------------------------


def _password_form(
    request: Request, kind: str, *, email: str, status: int = 200, error: str = ""
) -> Response:
    return render(
        request,
        "set-password.html",
        status=status,
        kind=kind,
        email=email,
        error=error,
        min_length=MIN_LENGTH,
    )


def _dead_link(request: Request, kind: str) -> Response:
    return render(request, "link-invalid.html", status=400, kind=kind)


async def _link_form(request: Request, purpose: EmailLinkPurpose, kind: str) -> Response:
    user = await signin_flow.view_link(request, purpose, request.path_params["token"])
    if user is None:
        return _dead_link(request, kind)
    return _password_form(request, kind, email=user.email)


async def _new_password(request: Request, purpose: EmailLinkPurpose, kind: str) -> str | Response:
    """The new password of a link's form, or the page that refuses it as it stands."""
    check_origin(request)
    form = await read_form(request)
    password = form.get("password", "")
    if password != form.get("password_confirm", ""):
        user = await signin_flow.peek_link(request, purpose, request.path_params["token"])
        if user is None:
            return _dead_link(request, kind)
        return _password_form(request, kind, email=user.email, status=422, error="mismatch")
    return password


async def _weak(
    request: Request, purpose: EmailLinkPurpose, kind: str, exc: WeakPasswordError
) -> Response:
    user = await signin_flow.peek_link(request, purpose, request.path_params["token"])
    if user is None:
        return _dead_link(request, kind)
    return _password_form(request, kind, email=user.email, status=422, error=str(exc))


@page
async def invitation_form(request: Request) -> Response:
    return await _link_form(request, EmailLinkPurpose.INVITATION, "invitation")


@page
async def invitation_submit(request: Request) -> Response:
    purpose, kind = EmailLinkPurpose.INVITATION, "invitation"
    password = await _new_password(request, purpose, kind)
    if isinstance(password, Response):
        return password
    try:
        user = await signin_flow.accept_invitation(request, request.path_params["token"], password)
    except WeakPasswordError as exc:
        return await _weak(request, purpose, kind, exc)
    if user is None:
        return _dead_link(request, kind)
    return see_other("/login?done=password-set")


@page
async def reset_request_form(request: Request) -> Response:
    return render(request, "reset-request.html")


@page
async def reset_request_submit(request: Request) -> Response:
    check_origin(request)
    form = await read_form(request)
    task = await signin_flow.request_reset(request, form.get("email", "").strip())
    # The same page whether or not the address has an account.
    return render(request, "reset-sent.html", background=task)


@page
async def reset_form(request: Request) -> Response:
    return await _link_form(request, EmailLinkPurpose.PASSWORD_RESET, "reset")


@page
async def reset_submit(request: Request) -> Response:
    purpose, kind = EmailLinkPurpose.PASSWORD_RESET, "reset"
    password = await _new_password(request, purpose, kind)
    if isinstance(password, Response):
        return password
    try:
        task = await signin_flow.complete_reset(request, request.path_params["token"], password)
    except WeakPasswordError as exc:
        return await _weak(request, purpose, kind, exc)
    if task is None:
        return _dead_link(request, kind)
    response = see_other("/login?done=password-reset")
    response.background = task
    return response
