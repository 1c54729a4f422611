"""A user's own profile: display name, language and time zone (used by notification emails)."""

from __future__ import annotations

import re
import unicodedata
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import ProfileError
from vault.lookalikes import find_invisible
from vault.models import User

MAX_DISPLAY_NAME = 200
_LOCALE = re.compile(r"[a-z]{2,3}")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone this system knows (e.g. "Asia/Tehran")."""
    if not name or len(name) > 64 or name.startswith(("/", ".")):
        raise ProfileError("timezone", "timezone must be an IANA time zone such as Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError(
            "timezone", "timezone must be an IANA time zone such as Europe/Paris"
        ) from None
    return name


def check_locale(code: str, supported: frozenset[str]) -> str:
    if not _LOCALE.fullmatch(code) or code not in supported:
        choices = ", ".join(sorted(supported))
        raise ProfileError("locale", f"locale must be one of: {choices}")
    return code


def check_display_name(name: str) -> str:
    name = " ".join(name.split())
    if len(name) > MAX_DISPLAY_NAME:
        raise ProfileError("display_name", f"display_name is at most {MAX_DISPLAY_NAME} characters")
    # Joiners (U+200C, U+200D) are part of Persian spelling; direction overrides only spoof.
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in name):
        raise ProfileError("display_name", "display_name may not contain control characters")
    # A display name made of look-alikes can pass for someone else's (review item 11).
    hidden = find_invisible(name)
    if hidden is not None:
        raise ProfileError(
            "display_name",
            f"display_name may not contain invisible characters or look-alike spaces "
            f"(found U+{ord(hidden):04X})",
        )
    return name


async def update_profile(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
    *,
    supported_locales: frozenset[str],
    locale: str | None = None,
    timezone: str | None = None,
    display_name: str | None = None,
) -> User:
    """Change the given fields of the caller's own profile, audited; None leaves one alone."""
    changed: dict[str, str] = {}
    if locale is not None:
        user.locale = changed["locale"] = check_locale(locale, supported_locales)
    if timezone is not None:
        user.timezone = changed["timezone"] = check_timezone(timezone)
    if display_name is not None:
        user.display_name = changed["display_name"] = check_display_name(display_name)
    if changed:
        session.add(user)
        await session.flush()
        await audit.record(
            session,
            context,
            AuditAction.USER_PROFILE_UPDATED,
            target_type="user",
            target_id=user.id,
            details=changed,
        )
    return user


async def show_own(
    session: AsyncSession, context: audit.AuditContext, user: User, *, part: str
) -> User:
    """The caller's own account, `part` of it (`profile`, `sessions`, `tokens`, `totp`,
    `notifications`, `page`) about to be shown to them: an access like any other, audited."""
    await audit.record(
        session,
        context,
        AuditAction.ACCOUNT_VIEWED,
        target_type="user",
        target_id=user.id,
        details={"part": part},
    )
    return user
