"""The link policy section of the console's client page: an admin sets or clears each of the
client's overrides of the firm's `[links]` defaults (audited as `link.policy_changed`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from vault import clients, link_policy
from vault.db import transaction
from vault.errors import InvalidLinkPolicyError
from web.api.links import link_defaults
from web.context import audit_context, services
from web.ids import parse_id
from web.pages.common import page, read_form, see_other
from web.pages.console_people import console_caller
from web.services import Services

FLAGS = ("allowed", "require_password", "require_recipient", "scan_drops")


async def section(
    session: AsyncSession, svc: Services, client_id: uuid.UUID, form: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the section shows: the firm's defaults, the client's overrides as form values
    ("" keeps the default), and the policy in effect."""
    defaults = link_defaults(svc.settings)
    own = await link_policy.overrides(session, client_id)
    values = {name: _shown(own[name]) for name in link_policy.OVERRIDABLE}
    return {
        "defaults": defaults,
        "effective": await link_policy.effective(session, defaults, client_id),
        "form": values | (form or {}),
    }


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _changes(form: dict[str, str]) -> dict[str, Any]:
    """Every override from the form; an empty choice returns it to the firm's default."""
    changes: dict[str, Any] = {}
    for name in FLAGS:
        raw = form.get(name, "")
        if raw not in ("", "yes", "no"):
            raise InvalidLinkPolicyError(f"{name} is yes, no or the firm's default")
        changes[name] = None if raw == "" else raw == "yes"
    changes["creators"] = form.get("creators", "") or None
    days = form.get("max_expiry_days", "").strip()
    if days and (not days.isdigit() or len(days) > 6):
        raise InvalidLinkPolicyError("max_expiry_days must be a whole number")
    changes["max_expiry_days"] = int(days) if days else None
    return changes


@page
async def change(request: Request) -> Response:
    # Imported here: the client page module imports this one for its section.
    from web.pages.console_clients import show_client

    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        client_id = parse_id(request.path_params["client_id"], "client")
        clients.require_admin(caller.principal)
        try:
            async with session.begin_nested():
                await link_policy.set_overrides(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    client_id,
                    _changes(form),
                )
        except InvalidLinkPolicyError as exc:
            problem = str(exc)
        else:
            problem = ""
    if problem:
        values = {name: form.get(name, "") for name in link_policy.OVERRIDABLE}
        return await show_client(
            request, status=422, policy_error=problem, policy_form=values, form=form
        )
    return see_other(f"/admin/clients/{client_id}?done=link_policy#link-policy")
