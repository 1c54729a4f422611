"""`clientvault fsck` end to end: a real config file, each object store, each database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import World, on_each_store
from tests.fixtures.cli import SCRIPT, cli_async
from tests.fixtures.fsck import flip_byte, key_of, put_object, upload
from vault.crypto import HEADER_SIZE
from web.services import Services
from web.settings import Settings


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_each_store(request, settings)


@pytest.fixture
def config(tmp_path: Path, settings: Settings) -> Path:
    """The test's settings as a config file (JSON strings are valid TOML strings)."""
    storage = settings.storage
    lines = [
        f"data_dir = {json.dumps(str(settings.data_dir))}",
        "[database]",
        f"url = {json.dumps(settings.database.url)}",
        "[storage]",
        f"backend = {json.dumps(storage.backend)}",
        "part_size_mib = 5",
    ]
    if storage.backend == "s3":
        lines += [
            f"{name} = {json.dumps(value)}"
            for name, value in {
                "endpoint_url": storage.endpoint_url,
                "region": storage.region,
                "bucket": storage.bucket,
                "access_key_id": storage.access_key_id,
                "secret_access_key": storage.secret_access_key.get_secret_value(),
            }.items()
        ]
    path = tmp_path / "clientvault.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_fsck_exits_zero_on_a_clean_store_and_names_each_problem(
    http: httpx.AsyncClient, world: World, services: Services, config: Path
) -> None:
    await upload(http, world, "fine.txt", b"fine")
    await upload(http, world, "other.txt", b"fine too", who="bob")
    clean = await cli_async(config, "fsck", "--deep")
    assert clean.exit_code == 0, clean.output
    assert clean.output.startswith("ok: 2 versions, 2 objects, 0 thumbnails checked")

    store = services.store
    corrupt = await key_of(services, await upload(http, world, "c.txt", b"c" * 1000))
    gone = await key_of(services, await upload(http, world, "g.txt", b"gone"))
    await flip_byte(store, corrupt, HEADER_SIZE + 1)  # ciphertext: a deep check's business
    await store.delete(gone)
    orphan = f"objects/{world.globex}/{uuid.uuid4()}"
    await put_object(store, orphan, b"left behind")

    shallow = await cli_async(config, "fsck", "--grace-minutes", "0")
    assert shallow.exit_code == 1, shallow.output
    assert f"missing\t{gone}" in shallow.stdout
    assert f"orphan\t{orphan}" in shallow.stdout
    assert corrupt not in shallow.stdout
    assert (
        "PROBLEMS: 4 versions, 4 objects, 0 thumbnails checked: 1 missing, 1 orphan"
        in shallow.stderr
    )

    deep = await cli_async(config, "fsck", "--deep", "--grace-minutes", "0")
    assert deep.exit_code == 1, deep.output
    assert f"content\t{corrupt}" in deep.stdout and "authentication" in deep.stdout

    # The orphan is young: by default it might be a version about to commit.
    default = await cli_async(config, "fsck")
    assert "orphan" not in default.stdout and default.exit_code == 1


async def test_fsck_client_limits_the_scan(
    http: httpx.AsyncClient, world: World, services: Services, config: Path
) -> None:
    await upload(http, world, "acme.txt", b"acme's")
    gone = await key_of(services, await upload(http, world, "g.txt", b"globex's", who="bob"))
    await services.store.delete(gone)
    acme = await cli_async(config, "fsck", "--client", "Acme")
    assert acme.exit_code == 0, acme.output
    assert "ok: 1 versions, 1 objects, 0 thumbnails checked" in acme.output
    globex = await cli_async(config, "fsck", "--client", "Globex")
    assert globex.exit_code == 1 and f"missing\t{gone}" in globex.stdout
    unknown = await cli_async(config, "fsck", "--client", "Initech")
    assert unknown.exit_code == 1 and "no client named 'Initech'" in unknown.output


async def test_fsck_shows_progress_only_on_a_terminal(
    http: httpx.AsyncClient, world: World, services: Services, config: Path
) -> None:
    await upload(http, world, "fine.txt", b"fine")
    piped = await cli_async(config, "fsck")
    assert "\r" not in piped.output  # no progress into a pipe or a log file

    # The installed script, with standard error on a pseudo-terminal.
    controller, terminal = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "--config",
            str(config),
            "fsck",
            stdout=asyncio.subprocess.PIPE,
            stderr=terminal,
            env={k: v for k, v in os.environ.items() if not k.startswith("CLIENTVAULT")},
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), 60)
        os.close(terminal)
        terminal = -1
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the other end is closed
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0 and stdout.startswith(b"ok: 1 versions")
    assert b"\r1 versions, 1 objects" in shown
