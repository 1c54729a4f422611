"""`clientvault backup DIR` and `clientvault restore DIR` (docs/operations.md: Backup)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from storage import StorageError
from vault import audit, backup, thumbnails
from vault.audit.actions import AuditAction
from vault.db import check_migrated, current_revision, migrate, transaction
from vault.errors import BackupError, VaultError
from web import backup_db
from web.services import Services, open_services
from web.settings import Settings, SettingsError

CONTEXT = audit.AuditContext(actor_role="cli")

_pg_bin = click.option(
    "--pg-bin",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Directory of pg_dump/pg_restore (default: found on PATH); PostgreSQL only.",
)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def _progress(what: str) -> Callable[[backup.Copied], None]:
    shown = sys.stderr.isatty()

    def tick(copied: backup.Copied) -> None:
        if shown:
            click.echo(
                f"\r{what} {copied.objects} objects, {copied.bytes} bytes", nl=False, err=True
            )

    return tick


def _run_async(coro: Coroutine[Any, Any, backup.Manifest]) -> backup.Manifest:
    try:
        result = asyncio.run(coro)
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc
    except StorageError as exc:
        raise click.ClickException(f"the object store failed: {exc}") from exc
    if sys.stderr.isatty():
        click.echo("", err=True)
    return result


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_pg_bin
@click.option(
    "--no-objects",
    is_flag=True,
    help="List the objects (checked to exist) without copying them, for a store backed up "
    "by its own replication.",
)
@click.pass_context
def backup_cmd(ctx: click.Context, directory: Path, pg_bin: str | None, no_objects: bool) -> None:
    """Write a consistent backup to DIRECTORY (new or empty): the database, every stored
    object the database refers to, the audit checkpoints, and a manifest. The key file is
    NOT included: back it up separately."""
    settings = _settings(ctx)
    if directory.exists() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} is not empty")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def run() -> backup.Manifest:
        async with open_services(settings) as svc:
            await check_migrated(svc.engine)
            revision = await current_revision(svc.engine) or ""
            url = settings.database_url
            async with backup_db.snapshot(svc.engine, url, directory, pg_bin=pg_bin) as (
                database_file,
                session,
            ):
                state = await backup.audit_state(session)
                copied = await backup.copy_objects(
                    session,
                    svc.store,
                    directory,
                    log_size=state.events,
                    include=not no_objects,
                    on_progress=_progress("copied"),
                )
            manifest = _manifest(svc, database_file, revision, state, copied, not no_objects)
            backup.write_manifest(directory, manifest)
            async with transaction(svc.sessions) as session:
                await backup.record(session, CONTEXT, AuditAction.BACKUP_CREATED, manifest)
            return manifest

    manifest = _run_async(run())
    listed = "" if manifest.objects_included else " listed, not copied"
    click.echo(
        f"ok: {directory}: {manifest.audit_events} audit events (head {manifest.audit_head}), "
        f"{manifest.objects} objects, {manifest.bytes} bytes{listed}"
    )


def _manifest(
    svc: Services,
    database_file: str,
    revision: str,
    state: backup.AuditState,
    copied: backup.Copied,
    objects_included: bool,
) -> backup.Manifest:
    return backup.Manifest(
        format=backup.FORMAT,
        created_at=backup.now(),
        database=backup_db.kind(svc.settings.database_url),
        database_file=database_file,
        schema_revision=revision,
        audit_events=state.events,
        audit_head=state.head,
        checkpoint=state.checkpoint,
        objects=copied.objects,
        bytes=copied.bytes,
        kek_ids=list(svc.keyring.key_ids),
        checkpoint_verifier_key=svc.checkpoint_signer.verifier_key,
        objects_included=objects_included,
    )


def _check_keys(svc: Services, manifest: backup.Manifest) -> None:
    missing = sorted(set(manifest.kek_ids) - set(svc.keyring.key_ids))
    if missing:
        raise click.ClickException(
            f"the key file lacks KEKs {', '.join(missing)} of the backup: "
            "restore the key file that was in use when the backup was taken"
        )
    if svc.checkpoint_signer.verifier_key != manifest.checkpoint_verifier_key:
        raise click.ClickException(
            "the key file's checkpoint signing key is not the backup's: "
            "restore the key file that was in use when the backup was taken"
        )


@click.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@_pg_bin
@click.pass_context
def restore_cmd(ctx: click.Context, directory: Path, pg_bin: str | None) -> None:
    """Restore the backup in DIRECTORY into the configured database, which must be empty,
    and object store (objects already there with the right size are kept). Run it with the
    key file of the backup's time in place; then `audit verify` and `fsck --deep`."""
    settings = _settings(ctx)

    async def run() -> backup.Manifest:
        manifest = backup.read_manifest(directory)
        if manifest.database != backup_db.kind(settings.database_url):
            raise BackupError(
                f"the backup holds a {manifest.database} database; the configured one is not"
            )
        async with open_services(settings) as svc:
            _check_keys(svc, manifest)
            if not await backup_db.is_empty(svc.engine):
                raise BackupError("the configured database is not empty")
            await backup.restore_objects(
                svc.store,
                directory,
                part_size=svc.part_size,
                on_progress=_progress("restored"),
            )
            await backup.check_restored(svc.store, directory)
            # Release every connection (SQLite: the file is about to be replaced).
            await svc.engine.dispose()
            await backup_db.restore(settings.database_url, directory, pg_bin=pg_bin)
            await migrate(svc.engine)
            async with transaction(svc.sessions) as session:
                # The backup holds no thumbnail objects: the thumbnail worker draws them again.
                await thumbnails.redraw_all(session)
                await backup.record(session, CONTEXT, AuditAction.BACKUP_RESTORED, manifest)
        return manifest

    manifest = _run_async(run())
    click.echo(
        f"ok: restored {manifest.audit_events} audit events (head {manifest.audit_head}) "
        f"and {manifest.objects} objects from {manifest.created_at}; "
        "now run `clientvault audit verify` and `clientvault fsck --deep`"
    )
