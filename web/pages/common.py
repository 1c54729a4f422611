"""What every page route shares: reading a form, finding the signed-in browser, and turning
errors into readable pages rather than problem+json."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vault.accounts.identity import SessionStage
from vault.db import transaction
from web.auth import Caller, check_csrf, resolve
from web.context import services
from web.errors import ProblemError, answer_for, status_for
from web.flows.signin import NEXT_STEP
from web.pages.render import render
from web.refusals import audit_refusal

logger = logging.getLogger(__name__)

FULL = frozenset({SessionStage.FULL})
ANY_STAGE = frozenset(SessionStage)
MAX_FORM_BODY = 64 * 1024
MAX_FORM_FIELDS = 32
FORM_TYPE = "application/x-www-form-urlencoded"

Endpoint = Callable[[Request], Awaitable[Response]]


class Redirect(Exception):  # control flow out of nested calls, not an error
    """Leave the page for another one (303 See Other)."""

    def __init__(self, location: str, *, refusal: str | None = None) -> None:
        super().__init__(location)
        self.location = location
        # Why the caller was turned away, when the redirect refuses the page (audited).
        self.refusal = refusal


def see_other(location: str) -> RedirectResponse:
    # 303: the browser follows a form POST with a GET, so a reload does not resubmit it.
    return RedirectResponse(location, status_code=303)


async def signed_in_context(request: Request) -> dict[str, Any]:
    """The signed-in navigation for an error page, looked up afresh (the route's transaction
    is gone). A courtesy: if the session cannot be read, the page goes without it."""
    try:
        async with transaction(services(request).sessions) as session:
            caller = await resolve(request, session)
    except Exception:
        logger.warning("no session for the error page of %s", request.url.path, exc_info=True)
        return {}
    browser = caller.browser if caller is not None else None
    if caller is not None and browser is not None and browser.stage == SessionStage.FULL:
        return {"user": caller.user, "csrf_token": browser.csrf_token}
    return {}


def page(endpoint: Endpoint) -> Endpoint:
    """Answer a page route's errors with a page: the browser shows it, not a JSON body."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Redirect as exc:
            if exc.refusal is not None:
                await audit_refusal(request, 303, exc.refusal)
            return see_other(exc.location)
        except ProblemError as exc:
            await audit_refusal(request, exc.status, exc.reason)
            headers = dict(exc.extra.get("headers") or {})
            nav = await signed_in_context(request) if exc.status < 500 else {}
            return render(request, "error.html", status=exc.status, headers=headers, **nav)
        except Exception as exc:
            # The same status the API gives (`status_for`), with a page in the reader's language.
            status = status_for(exc)
            answer = answer_for(exc)
            if answer is None and status == 500:
                # The details are for the log; the page says only that it failed.
                logger.exception("unhandled error on %s %s", request.method, request.url.path)
            elif status >= 500:
                logger.error("%d on %s %s: %s", status, request.method, request.url.path, exc)
            else:
                await audit_refusal(request, status)
            # Below 500 the person stays in the app, with its navigation; a 5xx may mean the
            # database is away, so that page asks it nothing more.
            nav = await signed_in_context(request) if status < 500 else {}
            if answer is None:
                return render(request, "error.html", status=status, **nav)
            text = answer.page
            return render(
                request, "error.html", status=status, heading=text.heading, text=text.text, **nav
            )

    return wrapper


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body, bounded in size and number of fields; the first of repeated
    fields wins."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BODY:
            raise ProblemError(413, "Content too large")
    if not body:
        return {}  # a form of buttons only, which some clients send without a content type
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise ProblemError(415, "Unsupported media type")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise ProblemError(400, "Bad request") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def browser_caller(
    request: Request,
    session: AsyncSession,
    *,
    stages: frozenset[SessionStage] = FULL,
    csrf_token: str | None = None,
) -> Caller:
    """The browser session behind the request, at one of `stages`.

    Without a session the page is the sign-in page; a session at another stage goes to the
    step it must finish (or home). A state-changing request must bring the session's CSRF
    token in `csrf_token`, a missing field counting as a wrong token.
    """
    caller = await resolve(request, session)
    if caller is None or caller.browser is None:
        raise Redirect("/login", refusal="unauthenticated")
    if caller.browser.stage not in stages:
        raise Redirect(NEXT_STEP[SessionStage(caller.browser.stage)], refusal="incomplete_sign_in")
    check_csrf(request, caller.browser, csrf_token or "")
    return caller


def notice(request: Request, known: frozenset[str]) -> str:
    """The `done` query parameter, if it names one of the notices the page knows; the text
    itself lives in the template, so a link cannot put words on the page."""
    value = request.query_params.get("done", "")
    return value if value in known else ""
