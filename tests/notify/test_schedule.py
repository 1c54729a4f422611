"""Due times by cadence and time zone, and the signed unsubscribe links (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notify.links import UnsubscribeLinks
from notify.schedule import due_at, next_daily, zone
from vault.crypto.keyring import KeyFile, Keyring
from vault.notifications import Cadence

WINDOW = timedelta(seconds=60)
UTC_ZONE = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def due(cadence: Cadence, now: datetime, tz: str = "UTC", hour: int = 8) -> datetime:
    return due_at(cadence, now, window=WINDOW, daily_hour=hour, tz=ZoneInfo(tz))


def test_immediate_waits_for_the_batch_window() -> None:
    assert due(Cadence.IMMEDIATE, utc(2026, 3, 10, 10, 7, 30)) == utc(2026, 3, 10, 10, 8, 30)


def test_every_15_minutes_is_the_next_quarter_hour() -> None:
    assert due(Cadence.EVERY_15_MINUTES, utc(2026, 3, 10, 10, 7, 30)) == utc(2026, 3, 10, 10, 15)
    assert due(Cadence.EVERY_15_MINUTES, utc(2026, 3, 10, 10, 15)) == utc(2026, 3, 10, 10, 30)
    # Nepal is UTC+05:45: its quarter hours are UTC's.
    nepal = due(Cadence.EVERY_15_MINUTES, utc(2026, 3, 10, 23, 50), tz="Asia/Kathmandu")
    assert nepal == utc(2026, 3, 11, 0, 0)


def test_hourly_is_the_top_of_the_local_hour() -> None:
    assert due(Cadence.HOURLY, utc(2026, 3, 10, 10, 7)) == utc(2026, 3, 10, 11, 0)
    # India is UTC+05:30: 15:37 local becomes 16:00 local, 10:30 UTC.
    assert due(Cadence.HOURLY, utc(2026, 3, 10, 10, 7), tz="Asia/Kolkata") == utc(
        2026, 3, 10, 10, 30
    )


def test_daily_is_the_next_chosen_local_hour() -> None:
    # 07:30 in Tehran (UTC+03:30): today's 09:00 is 05:30 UTC.
    assert due(Cadence.DAILY, utc(2026, 3, 10, 4, 0), "Asia/Tehran", 9) == utc(2026, 3, 10, 5, 30)
    # At that very moment the next one is tomorrow's.
    assert due(Cadence.DAILY, utc(2026, 3, 10, 5, 30), "Asia/Tehran", 9) == utc(2026, 3, 11, 5, 30)
    # Across the date line of the user's zone: 13:00 in Los Angeles, next 08:00 is tomorrow.
    assert due(Cadence.DAILY, utc(2026, 6, 1, 20, 0), "America/Los_Angeles", 8) == utc(
        2026, 6, 2, 15, 0
    )


def test_daily_across_daylight_saving_changes() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 29 March 2026: 02:00 does not exist in Berlin; the digest comes when the gap ends.
    assert next_daily(utc(2026, 3, 29, 0, 0), 2, berlin) == utc(2026, 3, 29, 1, 0)
    # 25 October 2026: 02:00 happens twice; the digest goes at the first, and only then.
    first = next_daily(utc(2026, 10, 24, 12, 0), 2, berlin)
    assert first == utc(2026, 10, 25, 0, 0)
    assert next_daily(first, 2, berlin) == utc(2026, 10, 26, 1, 0)


def test_unknown_zones_fall_back_to_utc() -> None:
    for name in ("", "Mars/Olympus", "../../etc/passwd", None):
        assert zone(name) == UTC_ZONE


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(KeyFile.create(tmp_path / "keys.json"))


def test_unsubscribe_tokens_name_one_user_and_client(keyring: Keyring) -> None:
    links = UnsubscribeLinks(keyring, "https://vault.example.test/")
    user, client = uuid.uuid4(), uuid.uuid4()
    url = links.url(user, client)
    assert url.startswith("https://vault.example.test/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    assert links.verify(token) == (user, client)
    assert links.token(user, client) == token  # stable: the same link in every email
    payload, kek, mac = token.split(".")
    # Changing either id or the signature breaks it.
    swapped = UnsubscribeLinks(keyring, "x").token(client, user).split(".")[0]
    assert links.verify(f"{swapped}.{kek}.{mac}") is None
    flipped = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")
    assert links.verify(f"{payload}.{kek}.{flipped}") is None
    for junk in ("", "abc", "a.b.c", "..", f"{payload}.{kek}", f"{payload}.!!.{mac}", "x" * 999):
        assert links.verify(junk) is None
    # A token naming a KEK that is not in the keyring is refused, not an error.
    assert links.verify(f"{payload}.a2VrLW5vbmU.{mac}") is None


def test_unsubscribe_links_survive_key_rotation(keyring: Keyring, tmp_path: Path) -> None:
    links = UnsubscribeLinks(keyring, "https://vault.example.test")
    user, client = uuid.uuid4(), uuid.uuid4()
    old = links.token(user, client)
    keyring.rotate()
    new = links.token(user, client)
    assert new != old
    assert links.verify(old) == (user, client) and links.verify(new) == (user, client)
    # Another keyring (another app node) holding only a different KEK accepts neither.
    other = UnsubscribeLinks(Keyring(KeyFile.create(tmp_path / "other-keys.json")), "x")
    assert other.verify(old) is None and other.verify(new) is None
