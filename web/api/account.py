"""The caller's own account (sessions, password, TOTP, tokens) and inviting and managing users.

Account routes need a signed-in browser session: a token may use the API but may not mint
tokens or change how its owner signs in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from notify import DeliveryError
from vault import accounts
from vault.accounts import invitations, mfa, people, profiles, reauth, sessions
from vault.accounts.identity import SessionStage
from vault.audit.actions import AuditAction
from vault.errors import MfaError, NotFoundError, WeakPasswordError
from vault.models import AccessToken, Role, TokenScope, User
from vault.policy import Permission, allows, require
from web import account_mail
from web.api.account_inputs import (
    Invitation,
    NewPassword,
    NewToken,
    Password,
    TotpConfirmation,
    UserChange,
)
from web.api.common import (
    SessionCall,
    api_call,
    iso,
    parse_id,
    session_call,
)
from web.api.inputs import parse_body
from web.auth import Caller, set_session_cookie
from web.context import services
from web.errors import ProblemError, problem
from web.flows import signin as signin_flow

ENROLLING = frozenset({SessionStage.ENROL, SessionStage.FULL})


# Sessions ----------------------------------------------------------------------------------


async def list_sessions(request: Request) -> JSONResponse:
    async with session_call(request) as call:
        await profiles.show_own(call.session, call.audit, call.user, part="sessions")
        rows = await sessions.live_sessions(
            call.session, call.user.id, policy=services(request).session_policy
        )
        body = [
            {
                "id": row.handle,
                "created_at": iso(row.created_at),
                "last_seen_at": iso(row.last_seen_at),
                "expires_at": iso(row.expires_at),
                "ip": row.ip,
                "user_agent": row.user_agent,
                "current": row.id == call.browser.id,
            }
            for row in rows
        ]
    return JSONResponse({"sessions": body})


async def delete_one_session(request: Request) -> Response:
    async with session_call(request) as call:
        handle = request.path_params["handle"]
        if not await sessions.end_by_handle(call.session, call.audit, call.user, handle):
            raise NotFoundError("session not found")
    return Response(status_code=204)


async def delete_other_sessions(request: Request) -> JSONResponse:
    """Sign out everywhere else."""
    async with session_call(request) as call:
        ended = await sessions.end_others(call.session, call.audit, call.user, call.browser)
    return JSONResponse({"ended": ended.sessions, "tokens_revoked": ended.tokens})


# Password ----------------------------------------------------------------------------------


def _refused(request: Request, check: reauth.Check, field: str, detail: str) -> Response:
    """The answer to a wrong password or code given to confirm a change: 422, or 429 once
    the account is locked (the same lock as sign-in's, issue 13 item 6)."""
    if check.locked_until is not None:
        seconds = signin_flow.retry_after_seconds(check)
        response = problem(
            429,
            "Too many attempts",
            f"too many failed attempts; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
            field=field,
        )
    else:
        response = problem(422, "Invalid request", detail, field=field)
    response.background = signin_flow.lockout_task(services(request), check)
    return response


async def change_password(request: Request) -> Response:
    async with session_call(request) as call:
        passwords = await parse_body(request, NewPassword)
        current, new = passwords.current_password, passwords.new_password
    # Both Argon2 runs happen outside any transaction (issue 13 item 5).
    svc = services(request)
    try:
        check = await reauth.change_password(
            svc.sessions,
            svc.password_hasher,
            call.audit,
            svc.signin_policy,
            call.user,
            current=current,
            new=new,
            keep_session=call.browser.id,
        )
    except WeakPasswordError as exc:
        raise ProblemError(422, "Invalid request", str(exc), field="new_password") from None
    if not check.ok:
        return _refused(request, check, "current_password", "the current password is wrong")
    task = signin_flow.password_changed_task(svc, call.user, how="changed by you")
    return Response(status_code=204, background=task)


async def _password_confirmed(request: Request, call: SessionCall, password: str) -> reauth.Check:
    """Check the password given to confirm a change, outside the call's transaction."""
    svc = services(request)
    return await reauth.check_password(
        svc.sessions,
        svc.password_hasher,
        call.audit,
        svc.signin_policy,
        call.user.id,
        password,
        action=AuditAction.AUTH_REAUTHENTICATE,
    )


# TOTP ----------------------------------------------------------------------------------------


async def totp_status(request: Request) -> JSONResponse:
    async with session_call(request, stages=ENROLLING) as call:
        await profiles.show_own(call.session, call.audit, call.user, part="totp")
        enabled = await mfa.has_totp(call.session, call.user.id)
        left = await mfa.remaining_recovery_codes(call.session, call.user.id)
    return JSONResponse({"enabled": enabled, "recovery_codes_left": left})


async def begin_totp(request: Request) -> JSONResponse:
    async with session_call(request, stages=ENROLLING) as call:
        enrolment = await mfa.begin_enrolment(
            call.session, services(request).keyring, call.user, call.audit
        )
    return JSONResponse(
        {"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": enrolment.qr_svg},
        headers={"Cache-Control": "no-store"},
    )


async def confirm_totp(request: Request) -> Response:
    """POST /me/totp/confirm {code, password}: the password is needed from a signed-in
    session (issue 13 item 8), not at the enrolment stage of signing in."""
    async with session_call(request, stages=ENROLLING) as call:
        confirmation = await parse_body(request, TotpConfirmation)
        code, password = confirmation.code, confirmation.password or ""
        caller = Caller(call.principal, call.user, call.browser)
    check = await signin_flow.enrolment_password(request, caller, password)
    if not check.ok:
        return _refused(request, check, "password", "the password is wrong")
    async with session_call(request, stages=ENROLLING) as call:
        caller = Caller(call.principal, call.user, call.browser)
        try:
            codes, started = await signin_flow.confirm_enrolment(
                request, call.session, caller, code
            )
        except MfaError as exc:
            wrong = str(exc)
        else:
            wrong = ""
    # Raised once the transaction committed, so the failed attempt stays in the log.
    if wrong:
        raise ProblemError(422, "Invalid request", wrong, field="code")
    body: dict[str, Any] = {"recovery_codes": codes}
    if started is not None:
        body["csrf_token"] = started.row.csrf_token
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    if started is not None:
        set_session_cookie(request, response, started.secret)
    return response


async def regenerate_recovery_codes(request: Request) -> Response:
    async with session_call(request) as call:
        password = (await parse_body(request, Password)).password
    check = await _password_confirmed(request, call, password)
    if not check.ok:
        return _refused(request, check, "password", "the password is wrong")
    async with session_call(request) as call:
        codes = await mfa.regenerate_recovery_codes(call.session, call.audit, call.user)
    return JSONResponse({"recovery_codes": codes}, headers={"Cache-Control": "no-store"})


# Personal access tokens -----------------------------------------------------------------------


def token_json(token: AccessToken) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "scope": token.scope,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "last_used_ip": token.last_used_ip,
        "revoked_at": iso(token.revoked_at),
    }


async def list_tokens(request: Request) -> JSONResponse:
    async with session_call(request) as call:
        await profiles.show_own(call.session, call.audit, call.user, part="tokens")
        rows = await accounts.list_tokens(call.session, call.user)
        return JSONResponse({"tokens": [token_json(t) for t in rows]})


async def create_token(request: Request) -> Response:
    """POST /me/tokens {name?, scope?, expires_in_days?, password, code?}: the password, and
    a TOTP or recovery code where the user has TOTP, are needed to mint a token; it lives at
    most `auth.token_max_days` (issue 13 item 4)."""
    longest = services(request).settings.auth.token_max_days
    async with session_call(request) as call:
        wanted = await parse_body(request, NewToken)
        name, scope = wanted.name or "", TokenScope(wanted.scope or TokenScope.READ_WRITE)
        days = longest if wanted.expires_in_days is None else wanted.expires_in_days
        if days > longest:
            raise ProblemError(
                422,
                "Invalid request",
                f"expires_in_days must be 1..{longest}",
                field="expires_in_days",
            )
        password, code = wanted.password, wanted.code or ""
    svc = services(request)
    check = await _password_confirmed(request, call, password)
    if not check.ok:
        return _refused(request, check, "password", "the password is wrong")
    async with session_call(request) as call:
        second = await reauth.check_second_factor(
            call.session,
            svc.keyring,
            call.audit,
            svc.signin_policy,
            call.user,
            code,
            action=AuditAction.AUTH_REAUTHENTICATE,
        )
        if second.ok:
            token, secret = await accounts.create_token(
                call.session,
                call.audit,
                call.user,
                name=name,
                scope=scope,
                expires_in=timedelta(days=days),
                clients_allowed=svc.settings.auth.client_tokens,
            )
    # A refused code is answered after the transaction commits, so it stays counted.
    if not second.ok:
        return _refused(request, second, "code", "the code from the authenticator app is wrong")
    body = {**token_json(token), "token": secret}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> Response:
    async with session_call(request) as call:
        token_id = parse_id(request.path_params["token_id"], "token")
        await accounts.revoke_token(call.session, call.audit, call.user, token_id)
    return Response(status_code=204)


# Invitations and user management ------------------------------------------------------------------


async def invite(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        invitation = await parse_body(request, Invitation)
        email, role = invitation.email, invitation.role or Role.CLIENT
        client_ids = [parse_id(c, "client") for c in invitation.client_ids]
        display_name = (invitation.display_name or "").strip()
        svc = services(request)
        valid_for = timedelta(hours=svc.settings.auth.invitation_valid_hours)
        invited = await invitations.invite(
            call.session,
            call.principal,
            call.audit,
            email=email,
            role=role,
            client_ids=client_ids,
            valid_for=valid_for,
            display_name=display_name,
        )
        manager = allows(call.principal, Permission.MANAGE, None)
    # Review item 7: a withheld invitation reads exactly as a sent one; only admins, who
    # manage users by id, are given the user's id.
    body: dict[str, Any] = {"email": invited.user.email, "role": role.value, "email_sent": True}
    if manager:
        body = {"user_id": str(invited.user.id), **body, "role": invited.user.role}
    if invited.withheld:
        return JSONResponse(body, status_code=201)
    try:
        # Sent while the inviter waits, so they learn at once if the address bounced.
        await account_mail.send_invitation(
            svc, invited.user, invited.secret, inviter=call.user, valid_for=valid_for
        )
    except DeliveryError:
        body["email_sent"] = False
    return JSONResponse(body, status_code=201)


async def reset_user_totp(request: Request) -> Response:
    """DELETE /users/{user_id}/totp: an admin resets someone's second factor (audited); the
    person is emailed, as from the console."""
    svc = services(request)
    async with api_call(request) as call:
        require(call.principal, Permission.MANAGE, None)
        user = await _user(call.session, request.path_params["user_id"])
        await people.reset_second_factor(call.session, call.principal, call.audit, user.id)
        by = call.user.display_name or call.user.email
    await account_mail.send_quietly(
        svc,
        "mfa-reset",
        user,
        by=by,
        when=account_mail.when(datetime.now(UTC)),
        link=account_mail.link(svc, "/login"),
    )
    return Response(status_code=204)


async def update_user(request: Request) -> JSONResponse:
    """PATCH /users/{user_id} {role?, active?}: privilege changes end the user's sessions and
    tokens (`vault.accounts.people`, as the console does it)."""
    async with api_call(request) as call:
        change = await parse_body(request, UserChange)
        require(call.principal, Permission.MANAGE, None)
        user = await _user(call.session, request.path_params["user_id"])
        user = await people.update_user(
            call.session,
            call.principal,
            call.audit,
            user.id,
            role=change.role,
            active=change.active,
        )
        body = {
            "id": str(user.id),
            "email": user.email,
            "role": user.role,
            "active": user.is_active,
        }
    return JSONResponse(body)


async def _user(session: Any, raw_id: str) -> User:
    user = await session.get(User, parse_id(raw_id, "user"))
    if user is None:
        raise NotFoundError("user not found")
    assert isinstance(user, User)
    return user
