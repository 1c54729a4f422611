"""Forms of the account page that change settings: the profile (name, time zone, language),
how often notification emails come, and inviting people.

Each answers with a redirect back to the account page (`?done=` says what happened), or with
the page itself, the error next to the form that caused it and nothing changed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from notify import DeliveryError
from vault.accounts import invitations, profiles
from vault.db import transaction
from vault.errors import (
    ConflictError,
    InvalidEmailError,
    NotFoundError,
    PermissionDeniedError,
    ProfileError,
)
from vault.models import Role
from vault.notifications import Cadence, Choice, Defaults, hearable_clients, set_preferences
from web import account_mail, i18n
from web.auth import CSRF_FIELD
from web.context import audit_context, services
from web.errors import ProblemError
from web.ids import parse_ids
from web.numbers import parse_int
from web.pages.account_view import (
    Problems,
    account_page,
    invite_roles,
    notification_form,
    notify_defaults,
)
from web.pages.common import FORM_TYPE, MAX_FORM_BODY, browser_caller, page, read_form, see_other

# An invitation form names each chosen client, so it may carry more fields than most forms.
MAX_INVITE_FIELDS = 2000
LOCALES = frozenset(i18n.LANGUAGES)


@page
async def save_profile(request: Request) -> Response:
    form = await read_form(request)
    wanted = {
        "display_name": form.get("display_name", ""),
        "timezone": form.get("timezone", "").strip(),
        "locale": form.get("locale", ""),
    }
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        user = caller.user
        # Every field is checked before any is set, so a refused form changes nothing.
        try:
            checked = {
                "display_name": profiles.check_display_name(wanted["display_name"]),
                "timezone": profiles.check_timezone(wanted["timezone"]),
                "locale": profiles.check_locale(wanted["locale"], LOCALES),
            }
        except ProfileError as exc:
            return await account_page(
                request,
                session,
                caller,
                status=422,
                problems=Problems(profile=exc.field, profile_form=wanted),
            )
        changed = {name: value for name, value in checked.items() if getattr(user, name) != value}
        if changed:
            await profiles.update_profile(
                session,
                audit_context(request, caller.principal),
                user,
                supported_locales=LOCALES,
                **changed,
            )
        locale = user.locale
    response = see_other("/account?done=profile-saved#profile")
    # Signed out, this browser keeps showing the language chosen here.
    response.set_cookie(
        i18n.COOKIE,
        locale,
        max_age=i18n.COOKIE_MAX_AGE,
        path="/",
        secure=svc.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


def _hour(raw: str) -> int | None:
    return parse_int(raw.strip(), maximum=23)


def _choice(cadence: str, hour: str, default_hour: int) -> Choice | None:
    try:
        chosen = Cadence(cadence)
    except ValueError:
        return None
    daily_hour = _hour(hour) if hour else default_hour
    return None if daily_hour is None else Choice(chosen, daily_hour)


def _notification_choices(
    form: dict[str, str], client_ids: list[uuid.UUID], defaults: Defaults
) -> dict[uuid.UUID, Choice] | None:
    """Each client's choice: its own where the form sets it apart (`cadence_<id>`), else the
    one for all clients; None when any value is not one the form offers."""
    shared = _choice(form.get("cadence", ""), form.get("daily_hour", ""), defaults.daily_hour)
    choices: dict[uuid.UUID, Choice] = {}
    for client_id in client_ids:
        own = form.get(f"cadence_{client_id}", "")
        if own:
            hour = form.get(f"daily_hour_{client_id}", "")
            choice = _choice(own, hour, defaults.daily_hour)
        else:
            choice = shared
        if choice is None:
            return None
        choices[client_id] = choice
    return choices


@page
async def save_notifications(request: Request) -> Response:
    """The one notification form: a choice for all the person's clients and, for any client
    set apart, its own; saved together in one transaction, or not at all."""
    form, raw_clients = await _read_invite_form(request)
    defaults = notify_defaults(request)
    async with transaction(services(request).sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        client_ids = parse_ids(raw_clients)
        if client_ids is None:
            raise NotFoundError("client not found")
        if not client_ids:
            # No client named: every client the person hears of.
            client_ids = [
                row.client.id for row in (await notification_form(request, session, caller)).rows
            ]
        # Someone else's client answers 404 before anything about the values is said.
        await hearable_clients(session, caller.principal, client_ids)
        choices = _notification_choices(form, client_ids, defaults)
        if choices is None:
            return await account_page(
                request, session, caller, status=422, problems=Problems(notifications=True)
            )
        await set_preferences(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            caller.user,
            choices,
            defaults,
        )
    return see_other("/account?done=notifications-saved#notifications")


async def _read_invite_form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The form's single fields, and every client it names (a `client_id` field repeated once
    per client: the invitation's and the notification form's), bounded in size like any other
    form."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BODY:
            raise ProblemError(413, "Content too large")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if body and media_type != FORM_TYPE:
        raise ProblemError(415, "Unsupported media type")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_INVITE_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise ProblemError(400, "Bad request") from None
    form: dict[str, str] = {}
    clients: list[str] = []
    for name, value in pairs:
        if name == "client_id":
            clients.append(value)
        else:
            form.setdefault(name, value)
    return form, clients


@page
async def invite(request: Request) -> Response:
    form, raw_clients = await _read_invite_form(request)
    entered = {
        "email": form.get("email", "").strip()[:320],
        "display_name": " ".join(form.get("display_name", "").split())[:200],
        "role": form.get("role", Role.CLIENT.value),
        "clients": raw_clients,
    }
    svc = services(request)
    valid_for = timedelta(hours=svc.settings.auth.invitation_valid_hours)
    async with transaction(svc.sessions) as session:
        caller = await browser_caller(request, session, csrf_token=form.get(CSRF_FIELD, ""))
        roles = invite_roles(caller.principal)
        if not roles:
            raise PermissionDeniedError(f"{caller.principal.role} may not invite")
        client_ids = parse_ids(raw_clients)

        async def refuse(status: int, error: str) -> Response:
            return await account_page(
                request,
                session,
                caller,
                status=status,
                problems=Problems(invite=error, invite_form=entered),
            )

        if entered["role"] not in roles:
            return await refuse(403, "role")
        role = Role(str(entered["role"]))
        if client_ids is None or (role is Role.CLIENT and not client_ids):
            return await refuse(422, "clients")
        try:
            # A refusal part-way leaves nothing behind: the page is answered in this
            # transaction, which then commits.
            async with session.begin_nested():
                invited = await invitations.invite(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    email=str(entered["email"]),
                    role=role,
                    client_ids=client_ids,
                    valid_for=valid_for,
                    display_name=str(entered["display_name"]),
                )
        except NotFoundError:
            # An unknown client and another firm member's client read the same.
            return await refuse(422, "clients")
        except PermissionDeniedError:
            return await refuse(403, "role")
        except ConflictError:
            return await refuse(409, "exists")
        except ProfileError:
            return await refuse(422, "display_name")
        except InvalidEmailError:
            return await refuse(422, "email")
        if invited.withheld:
            # Someone the inviter may not know about: answered as a sent invitation (item 7).
            return see_other("/account?done=invited#invite")
    try:
        # Sent while the inviter waits, so they learn at once if it could not go out; in the
        # language of the page the inviter is using.
        await account_mail.send_invitation(
            svc,
            invited.user,
            invited.secret,
            inviter=caller.user,
            valid_for=valid_for,
            lang=i18n.negotiate(request, caller.user.locale),
        )
    except DeliveryError:
        return see_other("/account?done=invite-unsent#invite")
    return see_other("/account?done=invited#invite")
