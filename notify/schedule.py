"""When a pending change is due to go out, by the recipient's cadence and time zone.

Times are compared in UTC throughout: two aware datetimes in the same zone compare by wall
clock and ignore `fold`, which would misorder the repeated hour when clocks go back.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vault.notifications import Cadence

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is empty or unknown to this system."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _next_boundary(now: datetime, step: timedelta, offset: timedelta) -> datetime:
    """The first multiple of `step` (counted from the epoch, shifted by `offset`) after now."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    shifted = now - epoch + offset
    steps = shifted // step + 1
    return epoch + steps * step - offset


def next_daily(now: datetime, hour: int, tz: ZoneInfo) -> datetime:
    """The next `hour`:00 local time strictly after `now`, in UTC.

    On the day clocks go forward past that hour, the digest comes at the first moment after
    the gap; on the day they go back, at the first of the two occurrences (fold=0).
    """
    moment = now.astimezone(UTC)
    day = moment.astimezone(tz).date()
    for offset in (0, 1, 2):
        local = datetime.combine(day + timedelta(days=offset), time(hour), tzinfo=tz)
        candidate = local.astimezone(UTC)
        if candidate > moment:
            return candidate
    raise AssertionError("unreachable: a day later is always after now")  # pragma: no cover


def due_at(
    cadence: Cadence,
    now: datetime,
    *,
    window: timedelta,
    daily_hour: int,
    tz: ZoneInfo,
) -> datetime:
    """When a change seen at `now` goes out under `cadence` (not called for `off`)."""
    moment = now.astimezone(UTC)
    if cadence is Cadence.EVERY_15_MINUTES:
        # Every zone's offset is a multiple of 15 minutes, so UTC quarters are local quarters.
        return _next_boundary(moment, QUARTER, timedelta(0))
    if cadence is Cadence.HOURLY:
        # The top of the local hour: half-hour zones (India, Tehran) are not on UTC's hour.
        offset = moment.astimezone(tz).utcoffset() or timedelta(0)
        return _next_boundary(moment, HOUR, offset)
    if cadence is Cadence.DAILY:
        return next_daily(moment, daily_hour, tz)
    return moment + window
