"""What share and upload-request links may be: firm-wide defaults, per-client overrides.

The defaults come from the web layer's settings (`[links]`) as a `LinkDefaults`; a client's
row in `link_policies` overrides any of them (a NULL column keeps the default). Changing a
client's row is audited as `link.policy_changed`. Existing links obey the policy of today,
not the one they were created under: a client whose links are switched off has every link
answer 404 at once.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Column, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from vault import audit
from vault.audit.actions import AuditAction
from vault.errors import InvalidLinkPolicyError, NotFoundError
from vault.models import Client, utcnow
from vault.policy import Permission, Principal, require

MAX_EXPIRY_DAYS = 3650


class Creators(StrEnum):
    """Who may create links to a client's files."""

    STAFF = "staff"  # staff assigned to the client, and admins
    STAFF_AND_CLIENTS = "staff_and_clients"  # also the client's own users


@dataclass(frozen=True, slots=True)
class LinkDefaults:
    """A link policy: the firm's defaults, or a client's effective policy."""

    allowed: bool = True
    creators: Creators = Creators.STAFF
    max_expiry_days: int = 30
    require_password: bool = False
    require_recipient: bool = False
    # Read by the upload side: whether files dropped through a link are held for a scan.
    scan_drops: bool = True

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["creators"] = str(self.creators)
        return data


class ClientLinkPolicy(SQLModel, table=True):
    """A client's overrides of the firm's link policy; NULL keeps the firm's default."""

    __tablename__ = "link_policies"
    client_id: uuid.UUID = Field(foreign_key="clients.id", primary_key=True)
    allowed: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    creators: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    max_expiry_days: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    require_password: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    require_recipient: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    scan_drops: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


OVERRIDABLE = (
    "allowed",
    "creators",
    "max_expiry_days",
    "require_password",
    "require_recipient",
    "scan_drops",
)


def _merge(defaults: LinkDefaults, row: ClientLinkPolicy | None) -> LinkDefaults:
    if row is None:
        return defaults
    changes: dict[str, Any] = {}
    for name in OVERRIDABLE:
        value = getattr(row, name)
        if value is not None:
            changes[name] = Creators(value) if name == "creators" else value
    return replace(defaults, **changes)


async def effective(
    session: AsyncSession, defaults: LinkDefaults, client_id: uuid.UUID
) -> LinkDefaults:
    """The policy that applies to `client_id`'s links now."""
    return _merge(defaults, await session.get(ClientLinkPolicy, client_id))


async def overrides(session: AsyncSession, client_id: uuid.UUID) -> dict[str, Any]:
    """The client's own settings (None where the firm's default applies)."""
    row = await session.get(ClientLinkPolicy, client_id)
    return {name: None if row is None else getattr(row, name) for name in OVERRIDABLE}


async def view(
    session: AsyncSession,
    context: audit.AuditContext,
    defaults: LinkDefaults,
    client_id: uuid.UUID,
) -> tuple[dict[str, Any], LinkDefaults]:
    """The client's overrides and the policy in effect, the reading audited as
    `link.policy_viewed`; the caller has checked that the client is theirs to see."""
    own = await overrides(session, client_id)
    result = await effective(session, defaults, client_id)
    await audit.record(
        session,
        context,
        AuditAction.LINK_POLICY_VIEWED,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
    )
    return own, result


def _check(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "creators":
        try:
            return str(Creators(value))
        except ValueError:
            raise InvalidLinkPolicyError("creators is staff or staff_and_clients") from None
    if name == "max_expiry_days":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidLinkPolicyError("max_expiry_days must be a whole number")
        if not 1 <= value <= MAX_EXPIRY_DAYS:
            raise InvalidLinkPolicyError(f"max_expiry_days is 1..{MAX_EXPIRY_DAYS}")
        return value
    if not isinstance(value, bool):
        raise InvalidLinkPolicyError(f"{name} must be true, false or null")
    return value


async def set_overrides(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """Set some of a client's overrides (None returns one to the firm's default); admin only.

    Returns the client's overrides after the change.
    """
    require(principal, Permission.MANAGE, None)
    if await session.get(Client, client_id) is None:
        raise NotFoundError("client not found")
    unknown = sorted(set(changes) - set(OVERRIDABLE))
    if unknown:
        raise InvalidLinkPolicyError(f"unknown setting(s): {', '.join(unknown)}")
    checked = {name: _check(name, value) for name, value in changes.items()}
    row = await session.get(ClientLinkPolicy, client_id) or ClientLinkPolicy(client_id=client_id)
    for name, value in checked.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by = principal.user_ref
    session.add(row)
    await session.flush()
    after = {name: getattr(row, name) for name in OVERRIDABLE}
    await audit.record(
        session,
        context,
        AuditAction.LINK_POLICY_CHANGED,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
        details={"changes": checked, "overrides": after},
    )
    return after
