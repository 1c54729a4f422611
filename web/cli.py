"""The `clientvault` command line. Every command takes --config (see DESIGN: Configuration)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

import notify
from vault import accounts, audit, keykeeping, maintenance, resources
from vault import folders as folder_service
from vault.accounts.passwords import check_password_policy, hash_password
from vault.crypto.keyring import KeyFile
from vault.db import check_migrated, migrate, transaction
from vault.errors import InvalidEmailError, NotFoundError, VaultError, WeakPasswordError
from vault.models import Role, TokenScope
from vault.policy import SYSTEM
from web.cli_audit import audit_group
from web.cli_backup import backup_cmd, restore_cmd
from web.cli_fsck import fsck
from web.cli_records import register as register_records
from web.cli_refusals import AuditedGroup, no_client, no_such, no_user
from web.cli_scan import scan_group
from web.datadir import DataDirError, prepare_data_dir
from web.services import Services, build_mailer, notify_config, open_services
from web.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
CLI_CONTEXT = audit.AuditContext(actor_role="cli")


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except (VaultError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


async def _with_services(settings: Settings, fn: Callable[[Services], Awaitable[T]]) -> T:
    async with open_services(settings) as svc:
        await check_migrated(svc.engine)
        return await fn(svc)


@click.group(cls=AuditedGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $CLIENTVAULT_CONFIG, else ./clientvault.toml, else built-in).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """ClientVault: a secure, encrypted client file-exchange portal."""
    try:
        ctx.obj = load_settings(config_path)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


async def _client_id(session: AsyncSession, name: str) -> uuid.UUID:
    found = await folder_service.find_client_by_name(session, name)
    if found is None:
        raise no_client(name)
    return found.id


def _email(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # A malformed address is a usage error, not a traceback.
    try:
        return accounts.normalise_email(value)
    except InvalidEmailError as exc:
        raise click.BadParameter(str(exc)) from None


main.add_command(audit_group)
main.add_command(backup_cmd)
main.add_command(restore_cmd)
main.add_command(fsck)
main.add_command(scan_group)


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the data directory, the key file (mode 0600) and the database schema."""
    settings = _settings(ctx)
    try:
        prepare_data_dir(settings)
    except DataDirError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.keys_path.exists():
        click.echo(f"key file exists: {settings.keys_path}")
    else:
        KeyFile.create(settings.keys_path)
        click.echo(f"created key file {settings.keys_path} (mode 0600): back it up")

    async def run() -> None:
        async with open_services(settings) as svc:
            await migrate(svc.engine)

    _run(run())
    click.echo("database ready")


@main.command("migrate")
@click.pass_context
def migrate_cmd(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    settings = _settings(ctx)

    async def run() -> None:
        async with open_services(settings) as svc:
            await migrate(svc.engine)

    _run(run())
    click.echo("database migrated")


@main.command()
@click.option("--host", default=None, help="Override [server].host.")
@click.option("--port", type=int, default=None, help="Override [server].port.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the portal with uvicorn."""
    # Imported here so the other commands start without loading the server stack.
    from web.serve import run as serve_app

    settings = _settings(ctx)
    config_path = ctx.parent.params.get("config_path") if ctx.parent else None
    config_path = str(config_path) if config_path else None
    try:
        serve_app(settings, host=host, port=port, config_path=config_path)
    except DataDirError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def client() -> None:
    """Manage clients."""


@client.command("add")
@click.argument("name")
@click.option(
    "--shared", is_flag=True, help="The firm's resources: every client and staff user may read it."
)
@click.pass_context
def client_add(ctx: click.Context, name: str, shared: bool) -> None:
    """Create a client named NAME."""

    async def run(svc: Services) -> str:
        async with transaction(svc.sessions) as session:
            created = await folder_service.create_client(session, SYSTEM, CLI_CONTEXT, name)
            if shared:
                await resources.set_shared(session, SYSTEM, CLI_CONTEXT, created.id, shared=True)
            return str(created.id)

    click.echo(_run(_with_services(_settings(ctx), run)))


def _set_shared(ctx: click.Context, name: str, *, shared: bool) -> None:
    async def run(svc: Services) -> str:
        async with transaction(svc.sessions) as session:
            client_id = await _client_id(session, name)
            await resources.set_shared(session, SYSTEM, CLI_CONTEXT, client_id, shared=shared)
            return str(client_id)

    click.echo(_run(_with_services(_settings(ctx), run)))


@client.command("share")
@click.argument("name")
@click.pass_context
def client_share(ctx: click.Context, name: str) -> None:
    """Let every client and staff user read client NAME (the firm's resources)."""
    _set_shared(ctx, name, shared=True)


@client.command("unshare")
@click.argument("name")
@click.pass_context
def client_unshare(ctx: click.Context, name: str) -> None:
    """Make client NAME private to its own members and staff again."""
    _set_shared(ctx, name, shared=False)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("email", callback=_email)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--client", "clients", multiple=True, help="Client name (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read a password from standard input.")
@click.pass_context
def user_add(
    ctx: click.Context, email: str, role: str, clients: tuple[str, ...], password_stdin: bool
) -> None:
    """Create a user with ROLE, with access to each --client."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        try:
            check_password_policy(password, email=email)
        except WeakPasswordError as exc:
            raise click.ClickException(str(exc)) from None

    async def run(svc: Services) -> str:
        password_hash = None if password is None else hash_password(password, svc.password_hasher)
        async with transaction(svc.sessions) as session:
            client_ids = [await _client_id(session, name) for name in clients]
            if client_ids and Role(role) not in (Role.CLIENT, Role.STAFF):
                raise click.ClickException("only client and staff users belong to clients")
            created = await accounts.create_user(
                session,
                CLI_CONTEXT,
                email=email,
                role=Role(role),
                client_ids=client_ids,
                password_hash=password_hash,
            )
            return str(created.id)

    click.echo(_run(_with_services(_settings(ctx), run)))


@main.group()
def token() -> None:
    """Manage personal access tokens."""


@token.command("create")
@click.argument("email", callback=_email)
@click.option("--name", default="cli", help="A label to recognise the token by.")
@click.option("--read-only", is_flag=True, help="The token may read but not change anything.")
@click.option(
    "--expires-days",
    type=click.IntRange(min=1),
    default=None,
    help="Expire after this many days (default and most: [auth].token_max_days).",
)
@click.pass_context
def token_create(
    ctx: click.Context, email: str, name: str, read_only: bool, expires_days: int | None
) -> None:
    """Create a token for EMAIL and print it (it is shown only once)."""
    settings = _settings(ctx)
    longest = settings.auth.token_max_days
    if expires_days is not None and expires_days > longest:
        raise click.BadParameter(f"at most {longest} days", param_hint="--expires-days")
    # Every token states the day it stops working; authentication caps older ones too.
    days = expires_days or longest

    async def run(svc: Services) -> str:
        async with transaction(svc.sessions) as session:
            found = await accounts.find_user(session, email)
            if found is None:
                raise no_user(email)
            _, secret = await accounts.create_token(
                session,
                CLI_CONTEXT,
                found,
                name=name,
                scope=TokenScope.READ if read_only else TokenScope.READ_WRITE,
                expires_in=timedelta(days=days),
            )
            return secret

    click.echo(_run(_with_services(settings, run)))


@token.command("list")
@click.argument("email", callback=_email)
@click.pass_context
def token_list(ctx: click.Context, email: str) -> None:
    """List EMAIL's tokens: id, scope, created, expires, last used, state, name."""

    async def run(svc: Services) -> list[str]:
        async with transaction(svc.sessions) as session:
            found = await accounts.find_user(session, email)
            if found is None:
                raise no_user(email)
            rows = await accounts.list_tokens(session, found, context=CLI_CONTEXT)

        def day(moment: datetime | None) -> str:
            return moment.strftime("%Y-%m-%d") if moment else "-"

        return [
            "\t".join(
                (
                    str(t.id),
                    t.scope,
                    day(t.created_at),
                    day(t.expires_at),
                    day(t.last_used_at),
                    "revoked" if t.revoked_at else "live",
                    t.name,
                )
            )
            for t in rows
        ]

    for line in _run(_with_services(_settings(ctx), run)):
        click.echo(line)


@token.command("revoke")
@click.argument("email", callback=_email)
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, email: str, token_id: str) -> None:
    """Revoke one of EMAIL's tokens by its id (from `token list`)."""
    try:
        wanted = uuid.UUID(token_id)
    except ValueError:
        raise no_such("token", token_id, f"not a token id: {token_id}") from None

    async def run(svc: Services) -> None:
        async with transaction(svc.sessions) as session:
            found = await accounts.find_user(session, email)
            if found is None:
                raise no_user(email)
            try:
                await accounts.revoke_token(session, CLI_CONTEXT, found, wanted)
            except NotFoundError:
                raise no_such("token", token_id, f"{email} has no token {token_id}") from None

    _run(_with_services(_settings(ctx), run))
    click.echo("revoked")


@main.group()
def keys() -> None:
    """Manage key-encryption keys."""


@keys.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Add a new active KEK; old ones stay to open existing data keys."""

    async def run(svc: Services) -> str:
        # Rotate only once the key file loaded and the database is ready for the event, so
        # a broken setup is a clear error and never leaves an unrecorded rotation behind.
        async with transaction(svc.sessions) as session:
            return await keykeeping.rotate(session, SYSTEM, CLI_CONTEXT, svc.keyring)

    click.echo(_run(_with_services(_settings(ctx), run)))


@keys.command("rewrap")
@click.pass_context
def keys_rewrap(ctx: click.Context) -> None:
    """Re-wrap every stored data key under the active KEK (object data is not touched)."""

    async def run(svc: Services) -> int:
        return await maintenance.rewrap_all(svc.sessions, svc.keyring)

    count = _run(_with_services(_settings(ctx), run))
    click.echo(f"re-wrapped {count} data keys")


@main.group("notify")
def notify_group() -> None:
    """Email notifications."""


@notify_group.command("run")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.pass_context
def notify_run(ctx: click.Context, once: bool) -> None:
    """Turn new document events into emails and deliver them (runs until stopped)."""
    settings = _settings(ctx)

    async def run(svc: Services) -> None:
        mailer, config = build_mailer(settings), notify_config(settings, svc.keyring)
        if once:
            result = await notify.run_once(svc.sessions, mailer, config)
            click.echo(str(result))
        else:
            await notify.run(svc.sessions, mailer, config)

    with contextlib.suppress(KeyboardInterrupt):
        _run(_with_services(settings, run))


register_records(main, client)
