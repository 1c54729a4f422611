"""Signing in and out, the second factor, password reset and accepting an invitation.

Every answer here is the same whether or not an address has an account, and the failure
counts and audit events of refused attempts are committed before the refusal is sent.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vault.accounts import profiles
from vault.accounts.identity import SessionStage
from vault.accounts.signin import Attempt, Outcome
from vault.db import transaction
from vault.errors import WeakPasswordError
from web.api.common import prefetch_body
from web.api.inputs import Body, parse_body
from web.auth import authenticate_caller, check_origin, clear_session_cookie, set_session_cookie
from web.context import audit_context, services
from web.errors import ProblemError, problem
from web.flows import signin as signin_flow

ALL_STAGES = frozenset(SessionStage)
_RESET_SENT = "If that address belongs to an account, a link to reset its password is on its way."


def _refused(request: Request, attempt: Attempt, detail: str) -> Response:
    if attempt.outcome is Outcome.LOCKED:
        seconds = signin_flow.retry_after_seconds(attempt)
        return problem(
            429,
            "Too many attempts",
            f"too many failed attempts; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )
    response = problem(401, "Unauthorized", detail)
    response.background = signin_flow.lockout_task(services(request), attempt)
    return response


class Credentials(Body):
    email: str
    password: str


class SecondFactor(Body):
    code: str


class ResetRequest(Body):
    email: str


class LinkStep(Body):
    """A reset or invitation link's token and the new password."""

    token: str
    password: str


async def create_session(request: Request) -> Response:
    """POST /session {email, password}: the password step of signing in."""
    check_origin(request)
    credentials = await parse_body(request, Credentials)
    attempt, started = await signin_flow.sign_in(request, credentials.email, credentials.password)
    if started is None:
        return _refused(request, attempt, "wrong email or password")
    response = JSONResponse(
        {
            "mfa_required": started.row.stage == SessionStage.SECOND_FACTOR,
            "mfa_enrolment_required": started.row.stage == SessionStage.ENROL,
            "csrf_token": started.row.csrf_token,
        },
        headers={"Cache-Control": "no-store"},
    )
    set_session_cookie(request, response, started.secret)
    return response


async def second_factor(request: Request) -> Response:
    """POST /session/totp {code}: a TOTP or recovery code finishes signing in."""
    svc = services(request)
    await prefetch_body(request)
    async with transaction(svc.sessions) as session:
        caller = await authenticate_caller(
            request, session, stages=frozenset({SessionStage.SECOND_FACTOR})
        )
        if caller.browser is None:
            # A Bearer token is already a full sign-in; only a browser session waits here.
            raise ProblemError(
                409, "Conflict", "no sign-in is waiting for a second factor: a token was sent"
            )
        code = await parse_body(request, SecondFactor)
        attempt, started = await signin_flow.second_factor(request, session, caller, code.code)
    if started is None:
        return _refused(request, attempt, "wrong code")
    response = JSONResponse(
        {"signed_in": True, "csrf_token": started.row.csrf_token},
        headers={"Cache-Control": "no-store"},
    )
    set_session_cookie(request, response, started.secret)
    return response


async def get_session(request: Request) -> Response:
    """GET /session: the browser session's stage and CSRF token (any stage)."""
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await authenticate_caller(request, session, stages=ALL_STAGES)
        if caller.browser is None:
            raise ProblemError(404, "Not found", "no browser session: the caller used a token")
        await profiles.show_own(
            session, audit_context(request, caller.principal), caller.user, part="session"
        )
        body = {
            "stage": caller.browser.stage,
            "csrf_token": caller.browser.csrf_token,
            "email": caller.user.email,
            "role": caller.user.role,
            "expires_at": caller.browser.expires_at.isoformat(),
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def delete_session(request: Request) -> Response:
    """DELETE /session: sign out (at any stage)."""
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await authenticate_caller(request, session, stages=ALL_STAGES)
        if caller.browser is None:
            raise ProblemError(404, "Not found", "no browser session: the caller used a token")
        await signin_flow.sign_out(request, session, caller)
    response = Response(status_code=204)
    clear_session_cookie(request, response)
    return response


async def request_reset(request: Request) -> Response:
    """POST /password-reset {email}: always the same 202, whether or not the account exists."""
    check_origin(request)
    reset = await parse_body(request, ResetRequest)
    task = await signin_flow.request_reset(request, reset.email)
    return JSONResponse({"detail": _RESET_SENT}, status_code=202, background=task)


async def _link_step(request: Request) -> tuple[str, str]:
    check_origin(request)
    step = await parse_body(request, LinkStep)
    return step.token, step.password


def _weak(exc: WeakPasswordError) -> ProblemError:
    return ProblemError(422, "Invalid request", str(exc), field="password")


async def complete_reset(request: Request) -> Response:
    """POST /password-reset/confirm {token, password}."""
    secret, password = await _link_step(request)
    try:
        task = await signin_flow.complete_reset(request, secret, password)
    except WeakPasswordError as exc:
        raise _weak(exc) from None
    if task is None:
        return problem(
            400, "Link not valid", "this link was used or has expired; ask for a new one"
        )
    return JSONResponse({"detail": "password changed; sign in with it"}, background=task)


async def accept_invitation(request: Request) -> Response:
    """POST /invitations/accept {token, password}: the invitee chooses a password."""
    secret, password = await _link_step(request)
    try:
        user = await signin_flow.accept_invitation(request, secret, password)
    except WeakPasswordError as exc:
        raise _weak(exc) from None
    if user is None:
        return problem(
            400, "Link not valid", "this invitation was used or has expired; ask for a new one"
        )
    return JSONResponse({"detail": "password set; sign in with it", "email": user.email})
