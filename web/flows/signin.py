"""The steps of signing in, shared by the JSON API and the browser pages.

Each function does the work of one step and leaves the answer's shape (JSON or HTML) to its
caller. Refusals commit their failure counts and audit events: the functions that open their
own transaction return normally on a refusal instead of raising inside it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.requests import Request

from vault.accounts import email_links, invitations, mfa, reauth, sessions, signin
from vault.accounts.identity import EmailLinkPurpose, SessionStage
from vault.accounts.passwords import check_password_policy, hash_password, off_loop
from vault.accounts.sessions import Started
from vault.accounts.signin import Attempt, Outcome
from vault.audit import AuditContext
from vault.audit.actions import AuditAction
from vault.db import transaction
from vault.models import User
from web import account_mail, i18n
from web.auth import Caller, cookie_name
from web.context import audit_context, services
from web.services import Services

# Where a browser session at each stage goes next.
NEXT_STEP = {
    SessionStage.SECOND_FACTOR: "/login/totp",
    SessionStage.ENROL: "/login/enrol",
    SessionStage.FULL: "/",
}


def retry_after_seconds(attempt: Attempt | reauth.Check) -> int:
    """Whole seconds until a locked attempt may be repeated (at least one)."""
    until = attempt.retry_after if isinstance(attempt, Attempt) else attempt.locked_until
    wait = (until or datetime.now(UTC)) - datetime.now(UTC)
    return max(1, math.ceil(wait.total_seconds()))


def lockout_task(svc: Services, attempt: Attempt | reauth.Check) -> BackgroundTask | None:
    """The email telling an account's owner that this attempt locked it, if it did."""
    if attempt.lockout is None:
        return None
    until = attempt.retry_after if isinstance(attempt, Attempt) else attempt.locked_until
    # The owner hears of the lockout once, when it starts, not on every refused try.
    return BackgroundTask(
        account_mail.send_quietly,
        svc,
        "lockout",
        attempt.lockout,
        until=account_mail.when(until or datetime.now(UTC)),
        reset_link=account_mail.link(svc, "/reset"),
    )


async def sign_in(request: Request, email: str, password: str) -> tuple[Attempt, Started | None]:
    """The password step; a new session when the password is right. Runs outside any
    transaction: the step opens its own, around (never across) the Argon2 run."""
    svc = services(request)
    return await signin.sign_in(
        svc.sessions,
        svc.password_hasher,
        audit_context(request),
        svc.signin_policy,
        svc.session_policy,
        email=email,
        password=password,
        replaces=request.cookies.get(cookie_name(request)),
    )


async def second_factor(
    request: Request, session: AsyncSession, caller: Caller, code: str
) -> tuple[Attempt, Started | None]:
    """Check a TOTP or recovery code for a session at the second-factor stage; on success the
    session is replaced by a fully signed-in one."""
    svc = services(request)
    assert caller.browser is not None  # only a browser session is ever at this stage
    attempt = await signin.second_factor_step(
        session,
        svc.keyring,
        audit_context(request),
        svc.signin_policy,
        caller.user,
        code,
    )
    started = None
    if attempt.outcome is Outcome.SIGNED_IN:
        started = await sessions.rotate(
            session, caller.browser, caller.user, SessionStage.FULL, policy=svc.session_policy
        )
    return attempt, started


async def confirm_enrolment(
    request: Request, session: AsyncSession, caller: Caller, code: str
) -> tuple[list[str], Started | None]:
    """Confirm a pending TOTP enrolment with its first code; returns the recovery codes, and
    a fully signed-in session when enrolment was the last step of signing in.

    Raises MfaError for a wrong code, ConflictError when no enrolment is pending.
    """
    svc = services(request)
    assert caller.browser is not None
    codes = await mfa.confirm_enrolment(
        session, svc.keyring, audit_context(request, caller.principal), caller.user, code
    )
    started = None
    # A stage read back from the database is a plain string: compare by value.
    if caller.browser.stage == SessionStage.ENROL:
        # Enrolment finishes signing in: a new session id for the new privilege level.
        started = await sessions.rotate(
            session, caller.browser, caller.user, SessionStage.FULL, policy=svc.session_policy
        )
    return codes, started


async def enrolment_password(request: Request, caller: Caller, password: str) -> reauth.Check:
    """Check the password before TOTP is turned on from a signed-in session (issue 13 item 8:
    whoever holds a session left open could otherwise enrol their own app, take the recovery
    codes and lock the owner out). Call outside any transaction.

    A session at the enrolment stage of signing in was made by the password step moments
    ago and can do nothing else, so it is not asked again.
    """
    assert caller.browser is not None
    if caller.browser.stage != SessionStage.FULL:
        return reauth.Check(True)
    svc = services(request)
    return await reauth.check_password(
        svc.sessions,
        svc.password_hasher,
        audit_context(request, caller.principal),
        svc.signin_policy,
        caller.user.id,
        password,
        action=AuditAction.MFA_ENROLLED,
    )


async def sign_out(request: Request, session: AsyncSession, caller: Caller) -> None:
    assert caller.browser is not None
    await sessions.sign_out(
        session, audit_context(request, caller.principal), caller.browser, caller.user.id
    )


async def request_reset(request: Request, email: str) -> BackgroundTask | None:
    """Issue a reset link if the address has an account; the email goes out after the
    answer, so the answer takes as long whether or not the account exists."""
    svc = services(request)
    valid_for = timedelta(minutes=svc.settings.auth.reset_valid_minutes)
    async with transaction(svc.sessions) as session:
        issued = await signin.request_reset(
            session, audit_context(request), svc.signin_policy, email=email, valid_for=valid_for
        )
    if issued is None:
        return None
    user, secret = issued
    return BackgroundTask(
        account_mail.send_quietly,
        svc,
        "reset",
        user,
        link=account_mail.link(svc, f"/reset/{secret}"),
        expires=account_mail.when(datetime.now(UTC) + valid_for),
    )


async def _through_link(
    request: Request, step: Callable[[AsyncSession, AuditContext], Awaitable[User | None]]
) -> User | None:
    """Run one step on an emailed link, counting a dead link against the address.

    A dead link followed (to show a form) counts as much as one submitted, so following links
    cannot probe more cheaply than submitting them.
    """
    svc = services(request)
    context = audit_context(request)
    async with transaction(svc.sessions) as session:
        if await signin.link_locked(session, context):
            return None
        user = await step(session, context)
        if user is None:
            await signin.link_failed(session, context, svc.signin_policy)
    return user


async def _new_password_hash(
    request: Request, purpose: EmailLinkPurpose, secret: str, password: str
) -> str | None:
    """The hash of the new password set through a live link, made outside any transaction
    (issue 13 item 5); None when the link is not live.

    Raises WeakPasswordError before the (costly) hash for a password the policy refuses.
    """
    user = await peek_link(request, purpose, secret)
    if user is None:
        return None
    check_password_policy(password, email=user.email, display_name=user.display_name)
    return await off_loop(hash_password, password, services(request).password_hasher)


async def complete_reset(request: Request, secret: str, password: str) -> BackgroundTask | None:
    """Set a new password through a reset link; None when the link is not live.

    Raises WeakPasswordError (nothing is written, the link stays usable) for a weak password.
    The returned task tells the owner that the password changed.
    """
    hashed = await _new_password_hash(request, EmailLinkPurpose.PASSWORD_RESET, secret, password)
    if hashed is None:
        return None
    user = await _through_link(
        request,
        lambda session, context: signin.complete_reset(
            session, context, secret=secret, password=password, password_hash=hashed
        ),
    )
    if user is None:
        return None
    return password_changed_task(services(request), user, how="reset through an emailed link")


async def peek_link(request: Request, purpose: EmailLinkPurpose, secret: str) -> User | None:
    """The user a live emailed link belongs to, to show its form without using it up."""
    return await _through_link(
        request, lambda session, _context: email_links.peek(session, purpose, secret)
    )


async def view_link(request: Request, purpose: EmailLinkPurpose, secret: str) -> User | None:
    """`peek_link` for showing the link's form: the visit is audited."""
    return await _through_link(
        request,
        lambda session, context: email_links.view(session, context, purpose, secret),
    )


async def accept_invitation(request: Request, secret: str, password: str) -> User | None:
    """Set an invitee's first password; None when the link is not live.

    Raises WeakPasswordError (nothing is written, the link stays usable) for a weak password.
    """
    hashed = await _new_password_hash(request, EmailLinkPurpose.INVITATION, secret, password)
    if hashed is None:
        return None
    return await _through_link(
        request,
        lambda session, context: invitations.accept(
            session,
            context,
            secret=secret,
            password=password,
            password_hash=hashed,
            locale=i18n.negotiate(request),
        ),
    )


def password_changed_task(svc: Services, user: User, *, how: str) -> BackgroundTask:
    """The email telling an account's owner that its password changed, and how."""
    return BackgroundTask(
        account_mail.send_quietly,
        svc,
        "password-changed",
        user,
        how=how,
        when=account_mail.when(datetime.now(UTC)),
        reset_link=account_mail.link(svc, "/reset"),
    )
