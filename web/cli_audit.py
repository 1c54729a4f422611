"""`clientvault audit …`: verify the log (chain and stored checkpoints), print the
checkpoint verifier key, and check an export offline."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import click

from notify import alert_mail
from vault import audit
from vault.audit import checkpoints, export_check
from vault.audit import reads as audit_reads
from vault.audit.checkpoints import StoredCheckpoints
from vault.db import check_migrated, transaction
from vault.errors import VaultError
from web.services import alert_rules, open_services
from web.settings import Settings, SettingsError

CLI_CONTEXT = audit.AuditContext(actor_role="cli")


@dataclass(frozen=True, slots=True)
class _Verified:
    chain: audit.Verification
    stored: StoredCheckpoints


def _settings(ctx: click.Context) -> Settings:
    parent = ctx.find_root()
    settings: Settings = parent.obj
    return settings


@click.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Walk the hash chain and check every stored checkpoint against the log; exit 1
    naming the first problem (an altered, removed or reordered event, a truncated or
    rewritten log)."""
    settings = _settings(ctx)

    async def run() -> _Verified:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            async with transaction(svc.sessions) as session:
                chain = await audit.verify(session)
            verifier = svc.checkpoint_signer.verifier
            stored = await checkpoints.verify_stored(svc.sessions, svc.store, verifier)
            async with transaction(svc.sessions) as session:
                await audit_reads.record_verified(session, CLI_CONTEXT, chain)
            return _Verified(chain, stored)

    try:
        result = asyncio.run(run())
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc
    chain, stored = result.chain, result.stored
    if not chain.ok:
        click.echo(
            f"FAILED at event {chain.first_bad_seq}: {chain.reason} "
            f"({chain.events} events verified before it)",
            err=True,
        )
    for problem in stored.problems:
        click.echo(f"FAILED: {problem}", err=True)
    if not (chain.ok and stored.ok):
        sys.exit(1)
    click.echo(
        f"ok: {chain.events} events, head {chain.head}; "
        f"{stored.checked} signed checkpoints consistent with the log"
    )


@audit_group.command("alerts")
@click.option("--once", is_flag=True, help="Check the new events once, then exit.")
@click.pass_context
def audit_alerts(ctx: click.Context, once: bool) -> None:
    """Evaluate the alert rules over new audit events and queue the emails to auditors
    (what each app process does itself unless [alerts].worker is false)."""
    settings = _settings(ctx)

    async def run() -> tuple[int, int]:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            rules = alert_rules(settings)
            public_url = settings.server.public_url
            if not once:
                await alert_mail.run(
                    svc.sessions,
                    rules,
                    public_url=public_url,
                    interval_seconds=settings.alerts.interval_seconds,
                )
            return await alert_mail.run_once(svc.sessions, rules, public_url=public_url)

    try:
        raised, queued = asyncio.run(run())
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{raised} alerts raised, {queued} emails queued")


@audit_group.command("key")
@click.pass_context
def audit_key(ctx: click.Context) -> None:
    """Print the checkpoint verifier key to hand to auditors (verify-export --key)."""
    settings = _settings(ctx)

    async def run() -> str:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            async with transaction(svc.sessions) as session:
                return await checkpoints.show_verifier_key(
                    session, CLI_CONTEXT, svc.checkpoint_signer
                )

    try:
        click.echo(asyncio.run(run()))
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc


@audit_group.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="File holding the log's verifier key (GET /api/v1/audit/checkpoint/key).",
)
def audit_verify_export(file: str, key_file: str) -> None:
    """Check an export (JSON Lines, or the CSV zip) offline: no database, no server."""
    sys.exit(export_check.main([file, "--key", key_file]))
