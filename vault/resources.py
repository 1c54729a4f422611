"""The firm's shared resources: clients marked `shared` (guides, forms, FAQs) that every
client user and staff member may read. What that grants is decided in `vault.policy`; this
module only marks clients and finds them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import NotFoundError
from vault.models import Client
from vault.policy import Permission, Principal, can_see_client, require


async def set_shared(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    *,
    shared: bool,
) -> Client:
    """Mark a client as the firm's shared resources (or no longer); admins only."""
    require(principal, Permission.MANAGE, None)
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFoundError("client not found")
    if client.shared != shared:
        client.shared = shared
        session.add(client)
        await session.flush()
        await audit.record(
            session,
            context,
            AuditAction.CLIENT_SHARED if shared else AuditAction.CLIENT_UNSHARED,
            client_id=client.id,
            target_type="client",
            target_id=client.id,
            details={"name": client.name},
        )
    return client


async def shared_clients(session: AsyncSession, principal: Principal) -> Sequence[Client]:
    """The shared clients `principal` may see (none for auditors), by name; an archived one
    is left out like any archived client."""
    rows = await session.execute(
        select(Client)
        .where(col(Client.shared).is_(True), col(Client.archived_at).is_(None))
        .order_by(col(Client.name_key))
    )
    return [c for c in rows.scalars().all() if can_see_client(principal, c.id)]
