"""A day typed into a form: what a due date or an expiry may be, in the typist's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from vault.models import Role, User
from web.days import coming_day, end_of_day, local_today

TODAY = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-10", (TODAY, "")),
        (" 2026-12-31 ", (date(2026, 12, 31), "")),
        ("2026-03-09", (None, "past")),
        ("", (None, "empty")),
        ("   ", (None, "empty")),
        ("10/03/2026", (None, "invalid")),
        ("2026-02-30", (None, "invalid")),
        ("٢٠٢٦-٠٣-١٠", (None, "invalid")),
    ],
)
def test_a_coming_day_is_today_or_later_in_iso_form(
    raw: str, expected: tuple[date | None, str]
) -> None:
    assert coming_day(raw, TODAY) == expected


def test_today_and_the_end_of_a_day_are_where_the_user_is() -> None:
    tehran = User(email="a@example.com", role=Role.CLIENT, timezone="Asia/Tehran")
    late = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # already the 11th in Tehran
    assert local_today(tehran, late) == date(2026, 3, 11)
    assert (
        local_today(User(email="b@example.com", role=Role.CLIENT, timezone="Nowhere/Else"), late)
        == TODAY
    )
    assert end_of_day(tehran, TODAY) == datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
