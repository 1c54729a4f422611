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
from notify import i18n as notify_i18n
from notify.i18n import bdi, trusted
from vault.audit import AuditContext
from vault.db import transaction
from vault.models import Client, User
from vault.notifications import Cadence, set_preference, show_unsubscribe
from web import i18n
from web.context import client_ip, services
from web.observe import request_id_of
from web.refusals import audit_refusal

_PAGE = Environment(autoescape=True, undefined=StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p>{{ sentence }}</p>
{% if state == "confirm" %}
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{ button }}</button>
</form>
{% endif %}
</main>
</body>
</html>
"""
)


def _page(
    state: str,
    *,
    lang: str,
    status: int = 200,
    client: str = "",
    email: str = "",
    action: str = "",
) -> HTMLResponse:
    _ = i18n.translations(lang).gettext
    # The names are escaped and keep their own direction inside the sentence (<bdi>).
    names = {"client": bdi(client), "email": bdi(email, direction="ltr")}
    if state == "confirm":
        sentence = trusted(_("Stop email notifications about %(client)s to %(email)s?"))
    elif state == "done":
        sentence = trusted(
            _(
                "You will no longer receive email notifications about %(client)s. "
                "You can turn them on again in your notification settings."
            )
        )
    else:
        sentence = trusted(_("This link is not valid."))
    body = _PAGE.render(
        state=state,
        lang=lang,
        dir=i18n.direction(lang),
        title=_("Email notifications"),
        sentence=sentence % names,
        button=_("Stop these emails"),
        action=action,
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _invalid() -> HTMLResponse:
    return _page("invalid", lang=i18n.DEFAULT, status=404)


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
            lang=notify_i18n.language(user.locale),
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
        return _page("done", lang=notify_i18n.language(user.locale), client=client.name)


def routes() -> list[BaseRoute]:
    return [
        Route("/unsubscribe/{token}", show, methods=["GET"]),
        Route("/unsubscribe/{token}", confirm, methods=["POST"]),
    ]
