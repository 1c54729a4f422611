"""The account page as a whole: everything its sections show, and which of them is
answering a form with an error."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from vault import accounts
from vault import folders as folder_service
from vault.accounts import mfa, sessions
from vault.accounts.invitations import invitable_roles
from vault.accounts.passwords import MIN_LENGTH
from vault.models import Client, Role, TokenScope
from vault.notifications import (
    Cadence,
    Defaults,
    Effective,
    effective,
    may_hear_of,
    preferences,
)
from vault.policy import Permission, Principal, allows
from web.auth import Caller
from web.context import services
from web.pages.common import notice
from web.pages.render import render

NOTICES = frozenset(
    {
        "password-changed",
        "session-ended",
        "sessions-ended",
        "token-revoked",
        "totp-enrolled",
        "profile-saved",
        "notifications-saved",
        "invited",
        "invite-unsent",
    }
)
DEFAULT_TOKEN_DAYS = 90
# Offered in the time zone field; any other IANA zone may still be typed in.
COMMON_TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Zurich",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Kyiv",
    "Europe/Moscow",
    "Asia/Jerusalem",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Africa/Cairo",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "America/St_Johns",
    "America/Halifax",
    "America/New_York",
    "America/Toronto",
    "America/Chicago",
    "America/Mexico_City",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Bogota",
    "America/Lima",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
)


@dataclass
class Problems:
    """What the page says went wrong, section by section, and the values to put back."""

    password: str = ""
    token: str = ""
    token_form: dict[str, str] | None = None
    profile: str = ""  # the field at fault: display_name, timezone or locale
    profile_form: dict[str, str] | None = None
    notifications: bool = False  # the notification form was refused
    invite: str = ""
    invite_form: dict[str, Any] | None = None
    recovery: str = ""


def notify_defaults(request: Request) -> Defaults:
    settings = services(request).settings.notify
    return Defaults(
        settings.client_default_cadence, settings.staff_default_cadence, settings.daily_hour
    )


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One client's line of the form: what applies to it, and whether it follows the choice
    for all clients (`same`) or is set differently."""

    client: Client
    cadence: str
    daily_hour: int
    same: bool


@dataclass(frozen=True, slots=True)
class NotificationForm:
    """The one form for every client: a choice for all of them, and the clients set
    differently from it."""

    cadence: str
    daily_hour: int
    rows: list[NotificationRow]

    @property
    def different(self) -> int:
        return sum(not row.same for row in self.rows)


def _setting(chosen: Effective) -> tuple[str, int | None]:
    # The hour only tells two settings apart for a daily email.
    return chosen.cadence.value, chosen.daily_hour if chosen.cadence is Cadence.DAILY else None


async def notification_form(
    request: Request, session: AsyncSession, caller: Caller
) -> NotificationForm:
    """The form as the person's settings fill it: the choice for all clients is the one most
    of them have (the default for their role on a tie), so a person who never set a client
    apart sees one choice."""
    defaults = notify_defaults(request)
    prefs = await preferences(session, caller.user.id)
    clients = [
        client
        for client_id in caller.principal.client_ids
        if (client := await session.get(Client, client_id)) is not None
        and may_hear_of(caller.principal, client)
    ]
    clients.sort(key=lambda c: (c.name.casefold(), str(c.id)))
    chosen = {c.id: effective(prefs.get(c.id), caller.user.role, defaults) for c in clients}
    counts = Counter(_setting(e) for e in chosen.values())
    role_default = _setting(effective(None, caller.user.role, defaults))
    cadence, hour = max(counts, key=lambda s: (counts[s], s == role_default), default=role_default)
    shared_hour = defaults.daily_hour if hour is None else hour
    rows = [
        NotificationRow(
            client,
            chosen[client.id].cadence.value,
            chosen[client.id].daily_hour,
            _setting(chosen[client.id]) == (cadence, hour),
        )
        for client in clients
    ]
    return NotificationForm(cadence, shared_hour, rows)


def invite_roles(principal: Principal) -> list[str]:
    """The roles the caller may invite, as form values (the rule is the vault's)."""
    return [role.value for role in invitable_roles(principal)]


async def invite_clients(session: AsyncSession, principal: Principal) -> list[Client]:
    """The clients the caller may invite people to (the firm's shared space is not one)."""
    return [
        c
        for c in await folder_service.list_clients(session, principal)
        if not c.shared and allows(principal, Permission.INVITE, c.id)
    ]


async def account_page(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    status: int = 200,
    problems: Problems | None = None,
) -> Response:
    assert caller.browser is not None
    svc = services(request)
    user = caller.user
    problems = problems or Problems()
    roles = invite_roles(caller.principal)
    return render(
        request,
        "account.html",
        status=status,
        user=user,
        csrf_token=caller.browser.csrf_token,
        notice=notice(request, NOTICES),
        sessions=await sessions.live_sessions(session, user.id, policy=svc.session_policy),
        current_session=caller.browser.id,
        totp_enabled=await mfa.has_totp(session, user.id),
        recovery_codes_left=await mfa.remaining_recovery_codes(session, user.id),
        tokens=await accounts.list_tokens(session, user),
        may_create_tokens=user.role != Role.CLIENT or svc.settings.auth.client_tokens,
        min_length=MIN_LENGTH,
        max_token_days=svc.settings.auth.token_max_days,
        password_error=problems.password,
        token_error=problems.token,
        token_form=problems.token_form
        or {
            "name": "",
            "scope": TokenScope.READ.value,
            "days": str(min(DEFAULT_TOKEN_DAYS, svc.settings.auth.token_max_days)),
        },
        profile_error=problems.profile,
        profile_form=problems.profile_form
        or {"display_name": user.display_name, "timezone": user.timezone, "locale": user.locale},
        timezones=COMMON_TIMEZONES,
        notify=await notification_form(request, session, caller),
        notification_error=problems.notifications,
        cadences=[c.value for c in Cadence],
        hours=range(24),
        invite_roles=roles,
        invite_clients=await invite_clients(session, caller.principal) if roles else [],
        invite_error=problems.invite,
        invite_form=problems.invite_form
        or {"email": "", "display_name": "", "role": Role.CLIENT.value, "clients": []},
        invite_valid_hours=svc.settings.auth.invitation_valid_hours,
        recovery_error=problems.recovery,
    )
