"""`audit.record` takes only the vocabulary's actions, with the details keys each declares."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.app import TEST_CONTEXT
from vault import audit
from vault.audit.actions import ACTIONS, DETAILS, AuditAction
from vault.db import transaction
from web.services import Services


def test_every_member_is_named_after_its_stored_action() -> None:
    for action in AuditAction:
        family, _, what = action.value.partition(".")
        assert family and what and action.name == f"{family}_{what}".upper()
    assert set(DETAILS) == set(AuditAction)
    assert {action.value for action in AuditAction} == ACTIONS


async def test_an_event_stores_the_actions_plain_name(services: Services) -> None:
    async with transaction(services.sessions) as session:
        event = await audit.record(
            session,
            TEST_CONTEXT,
            AuditAction.DOCUMENT_DOWNLOADED,
            details={"version": 2, "range": None, "bytes": 10, "request_id": "r-1"},
        )
    assert type(event.action) is str and event.action == "document.downloaded"
    assert json.loads(event.details)["request_id"] == "r-1"
    async with transaction(services.sessions) as session:
        assert (await audit.verify(session)).ok


async def test_an_undeclared_details_key_is_refused_and_nothing_is_appended(
    services: Services,
) -> None:
    async with transaction(services.sessions) as session:
        with pytest.raises(TypeError, match=r"document\.viewed declares no details key password"):
            await audit.record(
                session, TEST_CONTEXT, AuditAction.DOCUMENT_VIEWED, details={"password": "x"}
            )
        assert [e async for e in audit.iter_events(session)] == []


async def test_a_plain_string_action_is_refused(services: Services) -> None:
    async with transaction(services.sessions) as session:
        with pytest.raises(TypeError, match="must be an AuditAction"):
            await audit.record(session, TEST_CONTEXT, "document.viewed")  # type: ignore[arg-type]
        assert [e async for e in audit.iter_events(session)] == []
