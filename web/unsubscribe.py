"""One-click unsubscribe (RFC 8058) from the links in notification emails.

`GET /unsubscribe/{token}` only shows a confirmation page (link scanners and previews fetch
URLs, so a GET never changes anything); `POST /unsubscribe/{token}` turns that client's
emails off for that user. Mail providers send the POST themselves, without a session, when
the user presses "unsubscribe" in their mail client, as `List-Unsubscribe-Post` asks.

No login and no CSRF token: the signed token in the URL is the authority. It can only come
from the email sent to that user, and all it can do is turn emails off, so a forged
cross-site POST would need the very token it cannot know. Should CSRF checks ever move into
a middleware, these routes must stay exempt, or one-click unsubscribe stops working.
"""

from __future__ import annotations

import uuid

from jinja2 import Environment, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from notify import UnsubscribeLinks
from notify.i18n import Language, language
from vault.audit import AuditContext
from vault.db import transaction
from vault.models import Client, User
from vault.notifications import Cadence, set_preference, show_unsubscribe
from web.context import client_ip, services
from web.observe import request_id_of
from web.refusals import audit_refusal

_PAGE = Environment(autoescape=True, undefined=StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="{{ lang.code }}" dir="{{ lang.dir }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ lang.text("page_title") }}</title>
</head>
<body>
<main>
<h1>{{ lang.text("page_title") }}</h1>
{% if state == "confirm" %}
<p>{{ lang.text("page_confirm", client=client, email=email) }}</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{ lang.text("page_button") }}</button>
</form>
{% elif state == "done" %}
<p>{{ lang.text("page_done", client=client) }}</p>
{% else %}
<p>{{ lang.text("page_invalid") }}</p>
{% endif %}
</main>
</body>
</html>
"""
)


def _page(
    state: str,
    *,
    lang: Language,
    status: int = 200,
    client: str = "",
    email: str = "",
    action: str = "",
) -> HTMLResponse:
    body = _PAGE.render(state=state, lang=lang, client=client, email=email, action=action)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _invalid() -> HTMLResponse:
    return _page("invalid", lang=language(None), status=404)


def _verify(request: Request) -> tuple[uuid.UUID, uuid.UUID] | None:
    svc = services(request)
    links = UnsubscribeLinks(svc.keyring, svc.settings.server.public_url)
    return links.verify(request.path_params["token"])


async def _refused(request: Request) -> HTMLResponse:
    await audit_refusal(request, 404, "dead_link")
    return _invalid()


def _link_context(request: Request) -> AuditContext:
    # Whoever holds the link acts: no account is signed in.
    return AuditContext(
        actor_role="link",
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_of(request.scope),
    )


async def show(request: Request) -> HTMLResponse:
    ids = _verify(request)
    if ids is None:
        return await _refused(request)
    async with transaction(services(request).sessions) as session:
        user = await session.get(User, ids[0])
        client = await session.get(Client, ids[1])
        if user is None or client is None:
            return _invalid()
        await show_unsubscribe(session, _link_context(request), user.id, client.id)
        return _page(
            "confirm",
            lang=language(user.locale),
            client=client.name,
            email=user.email,
            action=request.url.path,
        )


async def confirm(request: Request) -> HTMLResponse:
    ids = _verify(request)
    if ids is None:
        return await _refused(request)
    context = _link_context(request)
    async with transaction(services(request).sessions) as session:
        user = await session.get(User, ids[0])
        client = await session.get(Client, ids[1])
        if user is None or client is None:
            return _invalid()
        await set_preference(session, context, user, client.id, Cadence.OFF, via="unsubscribe-link")
        return _page("done", lang=language(user.locale), client=client.name)


def routes() -> list[BaseRoute]:
    return [
        Route("/unsubscribe/{token}", show, methods=["GET"]),
        Route("/unsubscribe/{token}", confirm, methods=["POST"]),
    ]
