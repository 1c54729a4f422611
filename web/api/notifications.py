"""Notification settings of the caller, their profile's language and time zone, and the
admins' view of messages that could not be delivered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from notify import outbox
from vault.accounts import profiles
from vault.errors import NotFoundError, PermissionDeniedError
from vault.models import Client, Role, User
from vault.notifications import (
    Cadence,
    Defaults,
    Notification,
    NotificationPref,
    effective,
    may_hear_of,
    preferences,
    set_preference,
)
from vault.policy import Permission, Principal, require
from web import i18n
from web.api.common import api_call, iso, parse_id
from web.api.inputs import Body, parse_body
from web.context import services
from web.errors import ProblemError
from web.numbers import parse_int

MAX_LIST = 500


def _defaults(request: Request) -> Defaults:
    settings = services(request).settings.notify
    return Defaults(
        settings.client_default_cadence, settings.staff_default_cadence, settings.daily_hour
    )


def _entry(
    client: Client, pref: NotificationPref | None, user: User, defaults: Defaults
) -> dict[str, Any]:
    chosen = effective(pref, user.role, defaults)
    return {
        "client_id": str(client.id),
        "client_name": client.name,
        "cadence": chosen.cadence.value,
        "daily_hour": chosen.daily_hour,
        "is_default": chosen.is_default,
        "default_cadence": defaults.cadence_for(user.role).value,
    }


def _profile(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "locale": user.locale,
        "timezone": user.timezone,
    }


def _writable(principal: Principal) -> None:
    if principal.read_only:
        raise PermissionDeniedError("a read-only token cannot change settings")


async def my_notifications(request: Request) -> JSONResponse:
    defaults = _defaults(request)
    async with api_call(request) as call:
        await profiles.show_own(call.session, call.audit, call.user, part="notifications")
        prefs = await preferences(call.session, call.user.id)
        clients = [
            client
            for client_id in call.principal.client_ids
            if (client := await call.session.get(Client, client_id)) is not None
            and may_hear_of(call.principal, client)
        ]
        clients.sort(key=lambda c: (c.name.casefold(), str(c.id)))
        return JSONResponse(
            {
                **_profile(call.user),
                "cadences": [c.value for c in Cadence],
                "locales": sorted(i18n.LANGUAGES),
                "default_cadence": defaults.cadence_for(call.user.role).value,
                "default_daily_hour": defaults.daily_hour,
                "clients": [_entry(c, prefs.get(c.id), call.user, defaults) for c in clients],
            }
        )


class Preference(Body):
    cadence: Cadence
    daily_hour: Annotated[int, Field(ge=0, le=23)] | None = None


class Profile(Body):
    locale: str | None = None
    timezone: str | None = None
    display_name: str | None = None


async def set_my_notifications(request: Request) -> JSONResponse:
    client_id = parse_id(request.path_params["client_id"], "client")
    defaults = _defaults(request)
    async with api_call(request) as call:
        preference = await parse_body(request, Preference)
        client = await call.session.get(Client, client_id)
        if client is None or not may_hear_of(call.principal, client):
            raise NotFoundError("client not found")
        _writable(call.principal)
        pref = await set_preference(
            call.session,
            call.audit,
            call.user,
            client.id,
            preference.cadence,
            daily_hour=preference.daily_hour,
        )
        return JSONResponse(_entry(client, pref, call.user, defaults))


async def update_profile(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        profile = await parse_body(request, Profile)
        _writable(call.principal)
        await profiles.update_profile(
            call.session,
            call.audit,
            call.user,
            supported_locales=frozenset(i18n.LANGUAGES),
            locale=profile.locale,
            timezone=profile.timezone,
            display_name=profile.display_name,
        )
        return JSONResponse(_profile(call.user))


def _require_admin(principal: Principal, *, write: bool = False) -> None:
    # Like any resource the caller may not see, the outbox does not exist for non-admins.
    if principal.role is not Role.ADMIN:
        raise NotFoundError("not found")
    if write:
        require(principal, Permission.MANAGE, None)  # refuses read-only tokens


def _failed_json(row: Notification) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "user_id": str(row.user_id),
        "email": row.email,
        "client_id": str(row.client_id) if row.client_id else None,
        "message_id": row.message_id,
        "subject": row.subject,
        "state": row.state,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "last_attempt_at": iso(row.claimed_at),
    }


async def failed_notifications(request: Request) -> JSONResponse:
    raw = request.query_params.get("limit", "100")
    async with api_call(request) as call:
        _require_admin(call.principal)
        limit = parse_int(raw, minimum=1, maximum=MAX_LIST)
        if limit is None:
            raise ProblemError(422, "Invalid request", f"limit must be 1-{MAX_LIST}", field="limit")
        rows = await outbox.failed(call.session, limit=limit, context=call.audit)
        return JSONResponse({"notifications": [_failed_json(r) for r in rows]})


async def retry_notification(request: Request) -> JSONResponse:
    notification_id = parse_id(request.path_params["notification_id"], "notification")
    async with api_call(request) as call:
        _require_admin(call.principal, write=True)
        row = await outbox.retry(call.session, call.audit, notification_id, now=datetime.now(UTC))
        if row is None:
            found = await call.session.get(Notification, notification_id)
            if found is None:
                raise NotFoundError("notification not found")
            raise ProblemError(
                409,
                "Conflict",
                f"only failed notifications can be retried (this one is {found.state})",
            )
        return JSONResponse(_failed_json(row), status_code=202)
