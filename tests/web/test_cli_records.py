"""`clientvault client quota`, `retention run [--dry-run]`, `retention set` and `hold …`."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.app import World
from tests.fixtures.cli import cli_async, failed, ok
from tests.fixtures.cli import config as config
from tests.fixtures.retention import seed, version_numbers

__all__ = ["config"]  # the fixture, shared with the CLI tests
from web.services import Services


async def test_quota_is_set_and_shown(config: Path, services: Services, world: World) -> None:
    assert ok(await cli_async(config, "client", "quota", "Acme")) == "used 0 bytes of unlimited"
    assert ok(await cli_async(config, "client", "quota", "Acme", "5000")) == (
        "used 0 bytes of 5000 bytes"
    )
    assert ok(await cli_async(config, "client", "quota", "Acme", "default")) == (
        "used 0 bytes of unlimited"
    )
    assert "a number of bytes" in failed(await cli_async(config, "client", "quota", "Acme", "5G"))
    assert "no client named" in failed(await cli_async(config, "client", "quota", "Nobody", "1"))


async def test_dry_run_lists_exactly_the_lines_the_run_then_deletes(
    config: Path, http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    dry = ok(await cli_async(config, "retention", "run", "--dry-run")).splitlines()
    assert len(dry) == 5
    assert any("a.txt v1" in line for line in dry)
    assert (await version_numbers(services))["a.txt"] == [1, 2, 3, 4]
    run = ok(await cli_async(config, "retention", "run")).splitlines()
    assert run == dry
    assert (await version_numbers(services))["a.txt"] == [3, 4]
    assert ok(await cli_async(config, "retention", "run", "--dry-run")) == ""


async def test_a_hold_placed_from_the_cli_stops_retention_until_released(
    config: Path, http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    assert "reason" in failed(await cli_async(config, "hold", "place", "Acme"))
    hold_id = ok(await cli_async(config, "hold", "place", "Acme", "--reason", "Tax audit"))
    assert ok(await cli_async(config, "retention", "run")) == ""
    assert (await version_numbers(services))["a.txt"] == [1, 2, 3, 4]
    listed = ok(await cli_async(config, "hold", "list", "Acme"))
    assert f"{hold_id}\tclient\tstanding\tTax audit" == listed
    ok(await cli_async(config, "hold", "release", hold_id, "--reason", "Audit over"))
    assert "released" in ok(await cli_async(config, "hold", "list", "Acme"))
    assert len(ok(await cli_async(config, "retention", "run")).splitlines()) == 5


async def test_policy_set_from_the_cli(
    config: Path, http: httpx.AsyncClient, services: Services, world: World
) -> None:
    await seed(http, services, world)
    ok(await cli_async(config, "retention", "set", "Acme", "--keep-versions", "1"))
    ok(
        await cli_async(
            config,
            "retention",
            "set",
            "Acme",
            "--folder",
            str(world.acme_folder),
            "--keep-versions",
            "0",
        )
    )
    lines = ok(await cli_async(config, "retention", "run", "--dry-run")).splitlines()
    # Tax 2026 keeps everything now; "Old" below it still keeps only its current version.
    assert sorted(line.split("\t")[3] for line in lines) == ["b.txt v1", "b.txt v2"]
