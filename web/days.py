"""Days as a person means them: in their own time zone, and typed into a form field that
names a day that may not have passed (a due date, an expiry)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notify.schedule import zone
from vault.models import User

__all__ = ["coming_day", "end_of_day", "local_today", "user_zone"]


def user_zone(user: User) -> ZoneInfo:
    """The user's time zone, or UTC where they chose none this system knows."""
    return zone(user.timezone)


def local_today(user: User, now: datetime | None = None) -> date:
    """Today's date where the user is."""
    return (now or datetime.now(UTC)).astimezone(user_zone(user)).date()


def end_of_day(user: User, day: date) -> datetime:
    """The first moment after `day` ends where the user is, in UTC."""
    start_next = datetime.combine(day + timedelta(days=1), time(), tzinfo=user_zone(user))
    return start_next.astimezone(UTC)


def coming_day(raw: str, today: date) -> tuple[date | None, str]:
    """The day a form field names (ISO 8601, as `<input type="date">` sends it), and what
    is wrong with it for a day still to come: "" (nothing), "empty", "invalid" or "past".
    Today is not past."""
    text = raw.strip()
    if not text:
        return None, "empty"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, "invalid"
    return (None, "past") if day < today else (day, "")
