"""`clientvault client quota`, `retention …`, `hold …` and `gc`: records management from
the command line, acting as the system administrator (audited as the CLI)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from vault import audit, holds, maintenance, quotas, retention
from vault import folders as folder_service
from vault.accounts import ratelimit, sessions
from vault.db import check_migrated, transaction
from vault.errors import NotFoundError, VaultError
from vault.policy import SYSTEM
from vault.records import record_viewed
from web.cli_refusals import no_client, no_such
from web.services import Services, open_services
from web.settings import Settings, SettingsError

T = TypeVar("T")
CLI_CONTEXT = audit.AuditContext(actor_role="cli")


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def _run(settings: Settings, fn: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            return await fn(svc)

    try:
        return asyncio.run(main())
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc


async def _client_id(session: AsyncSession, name: str) -> uuid.UUID:
    found = await folder_service.find_client_by_name(session, name)
    if found is None:
        raise no_client(name)
    return found.id


def _size(value: int | None) -> str:
    return "unlimited" if not value else f"{value} bytes"


@click.command("quota")
@click.argument("name")
@click.argument("quota", required=False)
@click.pass_context
def quota_command(ctx: click.Context, name: str, quota: str | None) -> None:
    """Show the usage of client NAME, or set its QUOTA in bytes (0: unlimited; "default":
    the firm-wide [quotas].default_bytes)."""
    settings = _settings(ctx)
    default = settings.quotas.default_bytes
    if quota is not None and quota != "default" and not quota.isdigit():
        raise click.BadParameter("a number of bytes, 0 or 'default'", param_hint="QUOTA")

    async def run(svc: Services) -> quotas.Usage:
        async with transaction(svc.sessions) as session:
            client_id = await _client_id(session, name)
            if quota is None:
                await record_viewed(session, CLI_CONTEXT, client_id, "usage")
                return await quotas.usage(session, client_id, default=default)
            wanted = None if quota == "default" else int(quota)
            return await quotas.set_quota(
                session, SYSTEM, CLI_CONTEXT, client_id, wanted, default=default
            )

    usage = _run(settings, run)
    click.echo(f"used {usage.stored} bytes of {_size(usage.quota)}")


@click.group("retention")
def retention_group() -> None:
    """Retention policies."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--client", "client_name", default=None, help="Only this client.")
@click.pass_context
def retention_run(ctx: click.Context, dry_run: bool, client_name: str | None) -> None:
    """Apply every retention policy now: one line per version or trashed document deleted
    (or, with --dry-run, that would be)."""
    settings = _settings(ctx)

    async def run(svc: Services) -> retention.RetentionRun:
        client_id = None
        if client_name is not None:
            async with transaction(svc.sessions) as session:
                client_id = await _client_id(session, client_name)
        return await retention.apply(
            svc.sessions,
            svc.store,
            dry_run=dry_run,
            client_id=client_id,
            default_quota=settings.quotas.default_bytes,
        )

    done = _run(settings, run)
    for item in done.planned if dry_run else done.deleted:
        version = f" v{item.version}" if item.version is not None else ""
        click.echo(
            f"{item.kind}\t{item.client_id}\t{item.document_id}\t{item.name}{version}\t"
            f"{item.size}\t{item.reason}"
        )
    items = done.planned if dry_run else done.deleted
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(items)} items, {sum(i.size for i in items)} bytes", err=True)


@retention_group.command("set")
@click.argument("name")
@click.option("--folder", "folder_id", type=click.UUID, default=None, help="A folder's id.")
@click.option("--keep-versions", type=click.IntRange(0), default=None)
@click.option("--keep-days", type=click.IntRange(0), default=None)
@click.option("--trash-days", type=click.IntRange(0), default=None)
@click.pass_context
def retention_set(
    ctx: click.Context,
    name: str,
    folder_id: uuid.UUID | None,
    keep_versions: int | None,
    keep_days: int | None,
    trash_days: int | None,
) -> None:
    """Set the policy of client NAME (or of one of its folders); rules left out are
    inherited, 0 means no limit, and no rule at all removes the policy."""
    rules = retention.Rules(keep_versions, keep_days, trash_days)

    async def run(svc: Services) -> None:
        async with transaction(svc.sessions) as session:
            client_id = await _client_id(session, name)
            await retention.set_policy(
                session, SYSTEM, CLI_CONTEXT, client_id, folder_id=folder_id, rules=rules
            )

    _run(_settings(ctx), run)


@click.group("hold")
def hold_group() -> None:
    """Legal holds."""


@hold_group.command("place")
@click.argument("name")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--folder", "folder_id", type=click.UUID, default=None, help="A folder's id.")
@click.pass_context
def hold_place(ctx: click.Context, name: str, reason: str, folder_id: uuid.UUID | None) -> None:
    """Put client NAME (or one of its folders) on legal hold; prints the hold's id."""

    async def run(svc: Services) -> uuid.UUID:
        async with transaction(svc.sessions) as session:
            client_id = await _client_id(session, name)
            try:
                hold = await holds.place_hold(
                    session, SYSTEM, CLI_CONTEXT, client_id, folder_id=folder_id, reason=reason
                )
            except NotFoundError:
                raise no_such("folder", folder_id, f"{name} has no folder {folder_id}") from None
            return hold.id

    click.echo(_run(_settings(ctx), run))


@hold_group.command("release")
@click.argument("hold_id", type=click.UUID)
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.pass_context
def hold_release(ctx: click.Context, hold_id: uuid.UUID, reason: str) -> None:
    """Release the legal hold HOLD_ID."""

    async def run(svc: Services) -> None:
        async with transaction(svc.sessions) as session:
            try:
                await holds.release_hold(session, SYSTEM, CLI_CONTEXT, hold_id, reason=reason)
            except NotFoundError:
                raise no_such("hold", hold_id, f"no hold {hold_id}") from None

    _run(_settings(ctx), run)


@hold_group.command("list")
@click.argument("name")
@click.pass_context
def hold_list(ctx: click.Context, name: str) -> None:
    """The legal holds of client NAME, standing and released."""

    async def run(svc: Services) -> list[str]:
        async with transaction(svc.sessions) as session:
            client_id = await _client_id(session, name)
            found = await holds.list_holds(session, SYSTEM, client_id)
            await record_viewed(session, CLI_CONTEXT, client_id, "holds")
        return [
            f"{h.id}\t{h.folder_id or 'client'}\t"
            f"{'released' if h.released_at else 'standing'}\t{h.reason}"
            for h in found
        ]

    for line in _run(_settings(ctx), run):
        click.echo(line)


@click.command("gc")
@click.option("--grace-hours", type=float, default=None, help="Override [uploads].gc_grace_hours.")
@click.pass_context
def gc_command(ctx: click.Context, grace_hours: float | None) -> None:
    """Delete stored objects no version refers to, and stale unfinished uploads; objects
    of a client under legal hold are kept."""
    settings = _settings(ctx)
    grace = timedelta(hours=settings.uploads.gc_grace_hours if grace_hours is None else grace_hours)

    async def run(svc: Services) -> maintenance.CollectedGarbage:
        collected = await maintenance.collect_garbage(svc.sessions, svc.store, grace=grace)
        async with transaction(svc.sessions) as session:
            now = datetime.now(UTC)
            await sessions.purge(session, now=now)
            await ratelimit.purge(session, now=now)
        return collected

    result = _run(settings, run)
    held = f", kept {result.objects_held} under legal hold" if result.objects_held else ""
    click.echo(
        f"deleted {result.objects_deleted} objects, aborted {result.uploads_aborted} uploads{held}"
    )


def register(main: click.Group, client: click.Group) -> None:
    main.add_command(retention_group)
    main.add_command(hold_group)
    main.add_command(gc_command)
    client.add_command(quota_command)
