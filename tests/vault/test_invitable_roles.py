"""The roles a page offers an inviter are the roles the vault lets them invite: one rule,
asked by both, so a form can never offer what the vault then refuses (or hide what it allows)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from vault import accounts
from vault.accounts import invitations
from vault.db import transaction
from vault.errors import NotFoundError, PermissionDeniedError
from vault.models import Role, User
from vault.policy import Principal
from web.services import Services


class _Rollback(Exception):
    pass


async def _principal(services: Services, world: World, name: str) -> Principal:
    async with transaction(services.sessions) as session:
        user = await session.get(User, world[name].id)
        assert user is not None
        return await accounts.principal_for(session, user)


@pytest.mark.parametrize("inviter", ["alice", "sam", "ada", "otto"])
async def test_offered_roles_are_exactly_the_allowed_ones(
    services: Services, world: World, inviter: str
) -> None:
    principal = await _principal(services, world, inviter)
    offered = set(invitations.invitable_roles(principal))
    allowed = set()
    for role in Role:
        clients = [world.acme] if role is Role.CLIENT else []
        try:
            async with transaction(services.sessions) as session:
                await invitations.invite(
                    session,
                    principal,
                    TEST_CONTEXT,
                    email=f"new-{role.value}@example.test",
                    role=role,
                    client_ids=clients,
                    valid_for=timedelta(days=1),
                )
                raise _Rollback
        except _Rollback:
            allowed.add(role)
        except (PermissionDeniedError, NotFoundError):  # refused, or the client hidden
            pass
    assert offered == allowed
    assert {"alice": set(), "otto": set(), "sam": {Role.CLIENT}, "ada": set(Role)}[
        inviter
    ] == offered
