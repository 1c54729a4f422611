"""`clientvault scan run`: the scan worker outside the app (with `[scan].worker = false`),
and `clientvault scan ping`: whether the configured clamd answers."""

from __future__ import annotations

import asyncio
import contextlib

import click

from vault import scanning
from vault.clamd import ClamdScanner
from vault.db import check_migrated
from vault.errors import VaultError
from web.services import open_services, scan_policy
from web.settings import Settings, SettingsError


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


@click.group("scan")
def scan_group() -> None:
    """Malware scanning of versions held in quarantine."""


@scan_group.command("run")
@click.option("--once", is_flag=True, help="Scan what is pending now, then exit.")
@click.pass_context
def scan_run(ctx: click.Context, once: bool) -> None:
    """Scan pending versions and publish those that pass (runs until stopped)."""
    settings = _settings(ctx)
    policy = scan_policy(settings)

    async def run() -> None:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            await scanning.run(
                svc.sessions,
                svc.store,
                svc.keyring,
                policy,
                interval=settings.scan.interval_seconds,
                once=once,
            )

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run())
        except (VaultError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from exc


@scan_group.command("ping")
@click.pass_context
def scan_ping(ctx: click.Context) -> None:
    """Exit 0 when the configured clamd answers, 1 otherwise."""
    scanner = scan_policy(_settings(ctx)).scanner
    if not isinstance(scanner, ClamdScanner):
        raise click.ClickException("no scanner is configured ([scan].clamd_socket or clamd_host)")
    if not asyncio.run(scanner.ping()):
        raise click.ClickException("clamd does not answer")
    click.echo("ok")
