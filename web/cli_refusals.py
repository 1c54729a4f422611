"""Commands refused because they name a client, person or id that does not exist.

Whoever runs the CLI holds the database credentials, so there is no caller to refuse; but
a command that names someone or something unknown is still a refusal an auditor may need
to see (a mistyped name, or someone probing for who exists). Each is recorded like a
refused request, through `vault.refusals` and its flood limit, in a transaction of its
own after the command's one rolled back: `access.denied` with method `CLI`, the command as
the route (`token list`), reason `not_found`, status 1 (the exit status) and the name or id
as given as the target id.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import click

from vault import audit, refusals
from vault.db import transaction
from web.services import open_services
from web.settings import Settings

CONTEXT = audit.AuditContext(actor_role="cli")


class Refused(click.ClickException):
    """The command names a `target_type` that does not exist; the message says which."""

    def __init__(self, message: str, *, target_type: str, target_id: str) -> None:
        super().__init__(message)
        self.target_type, self.target_id = target_type, target_id
        ctx = click.get_current_context(silent=True)
        self.command = ctx.command_path.partition(" ")[2] if ctx else ""


def no_client(name: str) -> Refused:
    return Refused(f"no client named {name!r}", target_type="client", target_id=name)


def no_user(email: str) -> Refused:
    return Refused(f"no user {email}", target_type="user", target_id=email)


def no_such(target_type: str, target_id: object, message: str) -> Refused:
    """An id the command was given names no `target_type` (a token, a hold, a folder)."""
    return Refused(message, target_type=target_type, target_id=str(target_id))


async def _record(settings: Settings, refused: Refused) -> None:
    refusal = refusals.Refusal(
        method="CLI",
        route=refused.command,
        reason="not_found",
        status=1,
        target_type=refused.target_type,
        target_id=refused.target_id,
    )
    async with open_services(settings) as svc, transaction(svc.sessions) as session:
        await refusals.record(session, CONTEXT, refusal, now=datetime.now(UTC))


class AuditedGroup(click.Group):
    """The top command group: records a `Refused` command before reporting it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as refused:
            if isinstance(ctx.obj, Settings):
                asyncio.run(_record(ctx.obj, refused))
            raise
