"""Who is calling: a personal access token (Bearer) or a browser session cookie.

Bearer tokens are sent deliberately by scripts, so they need no CSRF defence. A session
cookie is sent by the browser on its own, so every state-changing request made with one
must carry the session's CSRF token (synchroniser token pattern), and must not come from
another origin. A session that has not finished signing in (second factor or TOTP
enrolment pending) authenticates nothing but the routes that finish it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from vault import accounts
from vault.accounts import sessions
from vault.accounts.identity import BrowserSession, SessionStage
from vault.models import TokenScope, User
from vault.policy import Principal
from web.context import client_ip, services
from web.errors import ProblemError
from web.refusals import remember_principal

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clientvault"'}
# RFC 6750 §3: a token that was sent but refused (unknown, revoked, expired) is answered with
# error="invalid_token", so a client knows to get a new one rather than to add one.
_INVALID_TOKEN = {
    "WWW-Authenticate": 'Bearer realm="clientvault", error="invalid_token", '
    'error_description="the token is not valid"'
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


# W3C Fetch Metadata §2.4: "none" is a navigation the user started (address bar, bookmark,
# download manager), "same-origin" a request from the portal's own pages.
_DELIBERATE_SITES = frozenset({"same-origin", "none"})


def deliberate(request: Request) -> bool:
    """Whether the caller, rather than another site, asked for this request.

    A link on another site can make a signed-in browser fetch a download (SameSite=Lax lets
    the cookie go with a top-level GET), and that must not count as the victim having
    received the document (review item 12). A Bearer token is only ever sent on purpose; a
    browser says where a request came from in `Sec-Fetch-Site`, and a request that does
    not say is not taken as deliberate.
    """
    if request.headers.get("authorization") is not None:
        return True  # only reached once the token was accepted
    return request.headers.get("sec-fetch-site", "").strip().lower() in _DELIBERATE_SITES


def _unauthorized(
    detail: str, reason: str = "unauthenticated", *, challenge: dict[str, str] = _CHALLENGE
) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, reason=reason, headers=challenge)


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    user: User
    # The browser session, when the caller came with a cookie rather than a token.
    browser: BrowserSession | None = None


def cookie_name(request: Request) -> str:
    # `__Host-` binds the cookie to this exact origin (Secure, Path=/, no Domain).
    return "__Host-cv_session" if services(request).settings.secure_cookies else "cv_session"


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(
        cookie_name(request),
        secret,
        path="/",
        secure=services(request).settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        cookie_name(request),
        path="/",
        secure=services(request).settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser says comes from another site.

    Covers the requests made before any session exists (sign-in, reset, invitation), where
    there is no CSRF token yet: login CSRF would sign the victim into the attacker's account.
    """
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise ProblemError(403, "Forbidden", "cross-site request refused", reason="cross_site")
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or one old enough that SameSite=Lax is the defence
    if origin == "null":
        raise ProblemError(403, "Forbidden", "cross-site request refused", reason="cross_site")
    own = urlsplit(services(request).settings.server.public_url)
    seen = urlsplit(origin)
    host = request.headers.get("host", "")
    if (seen.scheme, seen.netloc) != (own.scheme, own.netloc) and seen.netloc != host:
        raise ProblemError(403, "Forbidden", "cross-site request refused", reason="cross_site")


def check_csrf(request: Request, browser: BrowserSession, submitted: str | None = None) -> None:
    """The session's CSRF token must come with every state-changing cookie request."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request)
    token = submitted if submitted is not None else request.headers.get(CSRF_HEADER, "")
    if not token or not hmac.compare_digest(token.encode(), browser.csrf_token.encode()):
        raise ProblemError(
            403,
            "Forbidden",
            "missing or wrong CSRF token; reload the page and try again",
            reason="csrf",
        )


async def resolve(request: Request, session: AsyncSession) -> Caller | None:
    """The caller behind the request's credentials at any sign-in stage, or None.

    A Bearer header wins over a cookie, and a bad one is an error rather than a fallback.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized("send Authorization: Bearer <token>", "invalid_token")
        found = await accounts.authenticate_token(
            session,
            credentials.strip(),
            ip=client_ip(request),
            max_lifetime=timedelta(days=services(request).settings.auth.token_max_days),
        )
        if found is None:
            # One message for unknown, revoked and expired tokens: no oracle for guessing.
            raise _unauthorized("the token is not valid", "invalid_token", challenge=_INVALID_TOKEN)
        user, token = found
        principal = await accounts.principal_for(
            session, user, read_only=token.scope == TokenScope.READ
        )
        remember_principal(request, principal)
        return Caller(principal, user)
    secret = request.cookies.get(cookie_name(request))
    if not secret:
        return None
    live = await sessions.lookup(session, secret, policy=services(request).session_policy)
    if live is None:
        return None
    browser, user = live
    principal = await accounts.principal_for(session, user)
    remember_principal(request, principal)
    return Caller(principal, user, browser)


async def authenticate_caller(
    request: Request,
    session: AsyncSession,
    *,
    stages: frozenset[SessionStage] = frozenset({SessionStage.FULL}),
    csrf_token: str | None = None,
) -> Caller:
    """The signed-in caller, or 401; checks CSRF for cookie requests that change state.

    `stages` lists the sign-in stages a route accepts: only the routes that finish signing
    in accept a partial session.
    """
    caller = await resolve(request, session)
    if caller is None:
        raise _unauthorized("sign in or send Authorization: Bearer <token>")
    if caller.browser is not None:
        if caller.browser.stage not in stages:
            raise _unauthorized("finish signing in first", "incomplete_sign_in")
        check_csrf(request, caller.browser, csrf_token)
    return caller


async def authenticate(request: Request, session: AsyncSession) -> tuple[Principal, User]:
    """The fully signed-in caller of this request, or 401. Runs inside its transaction."""
    caller = await authenticate_caller(request, session)
    return caller.principal, caller.user
