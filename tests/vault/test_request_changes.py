"""The vault's rules for changing a request: a reminder by hand goes out once per ten
minutes whatever the number of clicks, only while the client owes something; the due date
never moves into the past; an answered item is never removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.dates import today
from tests.fixtures.request_management import open_request
from vault import request_changes
from vault.db import transaction
from vault.errors import ConflictError, InvalidRequestError
from vault.policy import SYSTEM
from vault.request_changes import RemindedRecentlyError
from vault.request_tables import REMIND_AGAIN_AFTER, ItemStatus
from web.services import Services


async def test_a_reminder_by_hand_waits_ten_minutes_before_another(
    services: Services, world: World
) -> None:
    request_id = await open_request(services, world, title="Year end", due=today(5))
    start = datetime.now(UTC)
    async with transaction(services.sessions) as session:
        await request_changes.remind_now(session, SYSTEM, TEST_CONTEXT, request_id, now=start)
    for seconds in (0, 1, REMIND_AGAIN_AFTER - 1):
        with pytest.raises(RemindedRecentlyError):
            async with transaction(services.sessions) as session:
                await request_changes.remind_now(
                    session, SYSTEM, TEST_CONTEXT, request_id,
                    now=start + timedelta(seconds=seconds),
                )  # fmt: skip
    async with transaction(services.sessions) as session:
        later = start + timedelta(seconds=REMIND_AGAIN_AFTER)
        await request_changes.remind_now(session, SYSTEM, TEST_CONTEXT, request_id, now=later)


async def test_nothing_owed_means_no_reminder_and_answered_items_stay(
    services: Services, world: World
) -> None:
    request_id = await open_request(
        services, world, title="Year end", due=today(5), items=("Bank statements", "Payroll")
    )
    async with transaction(services.sessions) as session:
        view = await request_changes.change_due_date(
            session, SYSTEM, TEST_CONTEXT, request_id, due_date=today(9)
        )
        first, second = view.items
        first.status = second.status = ItemStatus.SUBMITTED
        session.add_all([first, second])
    with pytest.raises(ConflictError):
        async with transaction(services.sessions) as session:
            await request_changes.remind_now(session, SYSTEM, TEST_CONTEXT, request_id)
    with pytest.raises(ConflictError):
        async with transaction(services.sessions) as session:
            await request_changes.edit_request(
                session, SYSTEM, TEST_CONTEXT, request_id, remove=[first.id]
            )
    with pytest.raises(InvalidRequestError):
        async with transaction(services.sessions) as session:
            await request_changes.change_due_date(
                session, SYSTEM, TEST_CONTEXT, request_id, due_date=today(-1)
            )
