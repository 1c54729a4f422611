"""`clientvault fsck`: compare the object store with the database (docs/operations.md: fsck)."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import click

from storage import StorageError
from vault import audit
from vault import folders as folder_service
from vault import fsck as fsck_service
from vault.db import check_migrated, transaction
from vault.errors import VaultError
from web.cli_refusals import no_client
from web.services import open_services
from web.settings import Settings, SettingsError

CONTEXT = audit.AuditContext(actor_role="cli")


@click.command()
@click.option("--deep", is_flag=True, help="Also decrypt every object and check its digest.")
@click.option("--client", "client_name", default=None, help="Check only this client's files.")
@click.option(
    "--grace-minutes",
    type=float,
    default=10.0,
    show_default=True,
    help="Orphans younger than this are not reported: their version may be about to commit.",
)
@click.pass_context
def fsck(ctx: click.Context, deep: bool, client_name: str | None, grace_minutes: float) -> None:
    """Check every stored object against the database; exit 1 on any problem."""
    settings: Settings = ctx.find_root().obj
    progress = sys.stderr.isatty()

    def show(problem: fsck_service.Problem) -> None:
        where = f" (document {problem.document_id} v{problem.number})" if problem.number else ""
        click.echo(f"{problem.kind}\t{problem.key}{where}: {problem.detail}")

    def tick(report: fsck_service.FsckReport) -> None:
        if progress:
            click.echo(
                f"\r{report.versions} versions, {report.objects} objects", nl=False, err=True
            )

    async def run() -> fsck_service.FsckReport:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            client_id = None
            if client_name is not None:
                async with transaction(svc.sessions) as session:
                    found = await folder_service.find_client_by_name(session, client_name)
                if found is None:
                    raise no_client(client_name)
                client_id = found.id
            return await fsck_service.check_store(
                svc.sessions,
                svc.store,
                svc.keyring,
                CONTEXT,
                deep=deep,
                client_id=client_id,
                orphan_grace=timedelta(minutes=grace_minutes),
                on_problem=show,
                on_progress=tick,
            )

    try:
        report = asyncio.run(run())
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc
    except StorageError as exc:
        raise click.ClickException(f"the object store failed: {exc}") from exc
    if progress:
        click.echo("", err=True)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.problems.items()))
    summary = (
        f"{report.versions} versions, {report.objects} objects, "
        f"{report.thumbnails} thumbnails checked"
    )
    if not report.clean:
        click.echo(f"PROBLEMS: {summary}: {counts}", err=True)
        sys.exit(1)
    click.echo(f"ok: {summary}")
