"""The `clientvault` command line, in-process (click's CliRunner) and as the installed script.

The CLI calls `asyncio.run`, so it runs from sync tests, or in a worker thread from async ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from click.testing import CliRunner
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.cli import cli, cli_async, failed, ok, script, write_config
from tests.fixtures.cli import config as config
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.tamper import tamper
from vault.crypto.keyring import KeyFile
from vault.db import check_migrated, create_engine, transaction
from vault.errors import NotMigratedError
from vault.models import AuditEvent, User, Version
from web.app import create_app
from web.cli import main
from web.services import Services, open_services
from web.settings import Settings, load_settings

COMMANDS = [
    ["init"],
    ["serve"],
    ["migrate"],
    ["client", "add"],
    ["user", "add"],
    ["token", "create"],
    ["keys", "rotate"],
    ["keys", "rewrap"],
    ["audit", "verify"],
    ["audit", "key"],
    ["audit", "verify-export"],
    ["gc"],
    ["fsck"],
    ["client", "quota"],
    ["retention", "run"],
    ["retention", "set"],
    ["hold", "place"],
    ["hold", "release"],
    ["hold", "list"],
]
LONG_PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists but has no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'clientvault.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"f_{uuid.uuid4().hex[:16]}"
    server.execute(f"CREATE DATABASE {name}")
    try:
        yield server.url(name)
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def portal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def stored_objects(settings: Settings) -> dict[str, bytes]:
    root = settings.objects_path
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


async def kek_ids(services: Services) -> set[str]:
    async with transaction(services.sessions) as session:
        return set((await session.execute(select(Version.kek_id))).scalars().all())


# --- the command set ------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    top = script(None, "--help")
    assert top.returncode == 0, top.stderr
    listed = {line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line}
    assert {c[0] for c in COMMANDS} <= listed
    runner = CliRunner()
    for command in COMMANDS:
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert f"Usage: main {' '.join(command)} [OPTIONS]" in result.output
    for group, subcommands in {"client": ["add"], "keys": ["rotate", "rewrap"]}.items():
        output = runner.invoke(main, [group, "--help"]).output
        assert all(name in output for name in subcommands)


# --- init and migrations --------------------------------------------------------------------


def test_init_creates_keys_and_a_migrated_database(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir = tmp_path / "empty" / "data"
    config = write_config(tmp_path / "clientvault.toml", data_dir, fresh_database_url)
    first = script(config, "init")
    assert first.returncode == 0, first.stderr
    keys_path = data_dir / "keys.json"
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    keys = json.loads(keys_path.read_bytes())
    assert keys["active"] in keys["keys"] and len(keys["keys"]) == 1
    # The audit checkpoint key is born with the keyring, and `audit key` prints its public half.
    name = keys["checkpoint_key"]["name"]
    assert ok(cli(config, "audit", "key")).startswith(f"{name}+")
    assert str(keys_path) in first.stdout and "database ready" in first.stdout

    async def migrated() -> None:
        engine = create_engine(fresh_database_url)
        try:
            await check_migrated(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrated())
    assert ok(cli(config, "client", "add", "Acme"))

    # Again: nothing is replaced, nothing is lost.
    before = keys_path.read_bytes()
    assert "key file exists" in ok(cli(config, "init"))
    assert keys_path.read_bytes() == before
    asyncio.run(migrated())
    assert "already exists" in failed(cli(config, "client", "add", "Acme"))


def test_unmigrated_database_is_refused(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "clientvault.toml", data_dir, fresh_database_url)
    data_dir.mkdir(mode=0o700)
    KeyFile.create(data_dir / "keys.json")
    for command in (["client", "add", "Acme"], ["audit", "verify"], ["gc"], ["keys", "rotate"]):
        message = failed(cli(config, *command))
        assert "clientvault migrate" in message, (command, message)
    # The refused rotation changed nothing.
    assert len(json.loads((data_dir / "keys.json").read_bytes())["keys"]) == 1

    async def start_app() -> None:
        async with LifespanManager(create_app(load_settings(config, environ={}))):
            pass  # pragma: no cover - the lifespan refuses to start

    with pytest.raises(NotMigratedError, match="clientvault migrate"):
        asyncio.run(start_app())

    assert "migrated" in ok(cli(config, "migrate"))
    uuid.UUID(ok(cli(config, "client", "add", "Acme")))
    assert "migrated" in ok(cli(config, "migrate"))  # idempotent


# --- clients, users and tokens -------------------------------------------------------------


def test_client_and_user_add(config: Path, settings: Settings) -> None:
    acme = uuid.UUID(ok(cli(config, "client", "add", "Acme")))
    assert "already exists" in failed(cli(config, "client", "add", "acme"))
    assert "must not contain '/'" in failed(cli(config, "client", "add", "../etc"))

    alice = uuid.UUID(
        ok(cli(config, "user", "add", "alice@example.test", "--role", "client", "--client", "Acme"))
    )
    unknown = failed(
        cli(config, "user", "add", "bob@example.test", "--role", "client", "--client", "Nope")
    )
    assert "no client named 'Nope'" in unknown
    assert "only client and staff" in failed(
        cli(config, "user", "add", "ada@example.test", "--role", "admin", "--client", "Acme")
    )
    assert "already exists" in failed(
        cli(config, "user", "add", "alice@EXAMPLE.test", "--role", "staff")
    )
    assert "not an email address" in failed(
        cli(config, "user", "add", "not an email", "--role", "admin")
    )
    assert "12 characters" in failed(
        cli(
            config,
            "user",
            "add",
            "carol@example.test",
            "--role",
            "staff",
            "--password-stdin",
            input="short\n",
        )
    )
    carol = uuid.UUID(
        ok(
            cli(
                config,
                "user",
                "add",
                "carol@example.test",
                "--role",
                "staff",
                "--client",
                "Acme",
                "--password-stdin",
                input=LONG_PASSWORD + "\n",
            )
        )
    )

    async def check() -> None:
        async with open_services(settings) as svc, transaction(svc.sessions) as session:
            users = {u.id: u for u in (await session.execute(select(User))).scalars().all()}
            assert set(users) == {alice, carol}  # the refused ones left nothing behind
            assert users[alice].password_hash is None
            stored = users[carol].password_hash
            assert stored and LONG_PASSWORD not in stored
            actions = [
                (e.action, e.actor_role)
                for e in (await session.execute(select(AuditEvent))).scalars().all()
            ]
            assert actions == [
                ("client.created", "cli"),
                ("user.created", "cli"),
                ("access.denied", "cli"),  # the unknown client: a refusal, audited
                ("user.created", "cli"),
            ]
            events = (await session.execute(select(AuditEvent))).scalars().all()
            assert all(LONG_PASSWORD not in e.details for e in events)
            assert events[0].client_id == str(acme)

    asyncio.run(check())


async def test_token_create_works_as_bearer(config: Path, settings: Settings) -> None:
    ok(await cli_async(config, "client", "add", "Acme"))
    user_id = ok(
        await cli_async(
            config, "user", "add", "alice@Example.TEST", "--role", "client", "--client", "Acme"
        )
    )
    token = ok(await cli_async(config, "token", "create", "alice@example.test", "--name", "ci"))
    assert token.startswith("cvt_") and len(token.splitlines()) == 1
    read_only = ok(await cli_async(config, "token", "create", "alice@example.test", "--read-only"))
    assert "no user nobody@example.test" in failed(
        await cli_async(config, "token", "create", "nobody@example.test")
    )
    assert "not an email address" in failed(await cli_async(config, "token", "create", "nobody"))

    async with portal(settings) as http:
        me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["id"] == user_id and me.json()["email"] == "alice@example.test"
        clients = await http.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"})
        assert [c["name"] for c in clients.json()["clients"]] == ["Acme"]
        reader = {"Authorization": f"Bearer {read_only}"}
        assert (await http.get("/api/v1/me", headers=reader)).status_code == 200
        bogus = {"Authorization": "Bearer cvt_x"}
        assert (await http.get("/api/v1/me", headers=bogus)).status_code == 401


async def test_cli_tokens_say_when_they_stop_working(config: Path, settings: Settings) -> None:
    """A CLI token expires like an API one: by default after `[auth].token_max_days`, and
    never later, so the account page can say when."""
    ok(await cli_async(config, "client", "add", "Acme"))
    ok(await cli_async(config, "user", "add", "alice@example.test", "--role", "client"))
    token = ok(await cli_async(config, "token", "create", "alice@example.test"))
    longest = settings.auth.token_max_days
    too_long = await cli_async(
        config, "token", "create", "alice@example.test", "--expires-days", str(longest + 1)
    )
    assert f"at most {longest} days" in failed(too_long)
    [row] = ok(await cli_async(config, "token", "list", "alice@example.test")).splitlines()
    created, expires = (date.fromisoformat(day) for day in row.split("\t")[2:4])
    assert expires - created == timedelta(days=longest)
    assert token.startswith("cvt_")


# --- the audit log --------------------------------------------------------------------------


def test_audit_verify(config: Path, settings: Settings) -> None:
    ok(cli(config, "client", "add", "Acme"))
    ok(cli(config, "client", "add", "Globex"))
    ok(cli(config, "user", "add", "ada@example.test", "--role", "admin"))
    good = ok(cli(config, "audit", "verify"))
    assert good.startswith("ok: 3 events, head ")

    async def alter() -> None:
        async with open_services(settings) as svc:
            await tamper(
                svc.engine,
                "UPDATE audit_events SET details = :d WHERE seq = 2",
                params={"d": '{"name":"Evil"}'},
            )

    asyncio.run(alter())
    # The installed script, so the exit status is the real process's.
    bad = script(config, "audit", "verify")
    assert bad.returncode == 1
    assert bad.stderr.startswith("FAILED at event 2: event content was altered")
    assert bad.stdout == ""


# --- keys -----------------------------------------------------------------------------------


async def test_keys_rotate_and_rewrap(
    config: Path,
    settings: Settings,
    services: Services,
    http: httpx.AsyncClient,
    world: World,
) -> None:
    content = os.urandom(200_000)
    alice = world["alice"].auth
    created = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/report.bin", content=content, headers=alice
    )
    assert created.status_code == 201, created.text
    url = f"/api/v1/documents/{created.json()['document_id']}/content"
    old_id = services.keyring.active_id
    assert await kek_ids(services) == {old_id}
    objects_before = stored_objects(settings)
    assert len(objects_before) == 1

    new_id = ok(await cli_async(config, "keys", "rotate"))
    assert new_id != old_id and new_id.startswith("kek-")
    keys = json.loads(settings.keys_path.read_bytes())
    assert set(keys["keys"]) == {old_id, new_id} and keys["active"] == new_id
    assert stat.S_IMODE(settings.keys_path.stat().st_mode) == 0o600
    assert (await http.get(url, headers=alice)).content == content  # the old KEK still opens it

    assert ok(await cli_async(config, "keys", "rewrap")) == "re-wrapped 1 data keys"
    assert await kek_ids(services) == {new_id}
    assert stored_objects(settings) == objects_before  # only the wrapped key changed
    assert (await http.get(url, headers=alice)).content == content
    async with portal(settings) as fresh:  # a new process reads the rotated key file
        assert (await fresh.get(url, headers=alice)).content == content
    assert ok(await cli_async(config, "keys", "rewrap")) == "re-wrapped 0 data keys"

    verified = ok(await cli_async(config, "audit", "verify"))
    assert verified.startswith("ok:")
    async with transaction(services.sessions) as session:
        events = (await session.execute(select(AuditEvent))).scalars().all()
    by_action = {e.action: json.loads(e.details) for e in events}
    assert by_action["keys.rotated"] == {"kek_id": new_id}
    assert by_action["keys.rewrapped"] == {"kek_id": new_id, "versions": 1}


# --- configuration errors ------------------------------------------------------------------


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "clientvault.toml", data_dir)
    keys_path = data_dir / "keys.json"
    for command in (
        ["migrate"],
        ["client", "add", "Acme"],
        ["token", "create", "a@example.test"],
        ["keys", "rotate"],
        ["keys", "rewrap"],
        ["audit", "verify"],
        ["gc"],
    ):
        message = failed(cli(config, *command))
        assert str(keys_path) in message and "clientvault init" in message, (command, message)
    assert not keys_path.exists()
    missing_config = failed(cli(tmp_path / "nope.toml", "gc"))
    assert "config file not found" in missing_config and "nope.toml" in missing_config


@pytest.mark.parametrize(
    ("name", "mentions"),
    [
        ("CLIENTVAULT__DATABSE__URL", "databse"),
        ("CLIENTVAULT__DATABASE__URLL", "urll"),
        ("CLIENTVAULT__DATA_DRI", "data_dri"),
        ("CLIENTVAULT__DATABASE__URL__X", "CLIENTVAULT__DATABASE__URL__X"),
        ("CLIENTVAULT__SERVER__PORT", "port"),
    ],
)
def test_environment_typo_is_a_clear_error(tmp_path: Path, name: str, mentions: str) -> None:
    config = write_config(tmp_path / "clientvault.toml", tmp_path / "data")
    message = failed(cli(config, "gc", env={name: "not-a-port"}))
    assert mentions in message
    assert not (tmp_path / "data").exists()  # nothing ran


# --- gc --------------------------------------------------------------------------------------


def test_gc_runs(config: Path, settings: Settings) -> None:
    orphan = settings.objects_path / "objects" / str(uuid.uuid4()) / str(uuid.uuid4())
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind by a crashed upload")
    assert ok(cli(config, "gc")) == "deleted 0 objects, aborted 0 uploads"  # within the grace
    assert orphan.exists()
    assert ok(cli(config, "gc", "--grace-hours", "0")) == "deleted 1 objects, aborted 0 uploads"
    assert not orphan.exists()
