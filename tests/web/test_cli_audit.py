"""`clientvault audit verify` against each way the stored log can be tampered with."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.cli import cli, ok, write_config
from tests.fixtures.tamper import rewrite, tamper
from vault.audit import checkpoints
from vault.errors import CheckpointError
from vault.models import AuditEvent
from web.services import open_services
from web.settings import Settings


@pytest.fixture
def config(tmp_path: Path, settings: Settings) -> Path:
    return write_config(tmp_path / "clientvault.toml", settings.data_dir, settings.database.url)


def _promote_third(event: AuditEvent) -> None:
    if event.seq == 3:
        event.actor_role = "admin"


AUDIT_TAMPERING: dict[str, tuple[list[str], str]] = {
    "altered field": (
        ["UPDATE audit_events SET actor_role = 'admin' WHERE seq = 2"],
        "FAILED at event 2: event content was altered",
    ),
    "deleted event": (
        ["DELETE FROM audit_events WHERE seq = 2"],
        "FAILED at event 2: event 2 is missing",
    ),
    "swapped events": (
        [
            "UPDATE audit_events SET seq = -2 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = -2",
        ],
        "FAILED at event 2: chain broken",
    ),
    "truncated tail": (
        [
            "DELETE FROM audit_events WHERE seq > 2",
            "UPDATE audit_head SET seq = 2, leaf_hash = "
            "(SELECT leaf_hash FROM audit_events WHERE seq = 2) WHERE id = 1",
        ],
        "FAILED: checkpoint 5 covers more events than the log holds (2): the log was truncated",
    ),
    "rewritten consistently": ([], "FAILED: checkpoint 5 does not match the log"),
}


@pytest.mark.parametrize("case", sorted(AUDIT_TAMPERING))
def test_audit_verify_names_each_tampering(config: Path, settings: Settings, case: str) -> None:
    for name in ("Acme", "Globex", "Initech", "Umbrella"):
        ok(cli(config, "client", "add", name))

    async def checkpoint_then_tamper() -> None:
        async with open_services(settings) as svc:
            assert await checkpoints.write(svc.sessions, svc.store, svc.checkpoint_signer)
            statements, _ = AUDIT_TAMPERING[case]
            if statements:
                await tamper(svc.engine, *statements)
            else:
                await rewrite(svc.engine, _promote_third)

    # The four clients, then this check itself (`audit.verified`): the checkpoint covers 5.
    good = ok(cli(config, "audit", "verify"))
    assert good.endswith("; 0 signed checkpoints consistent with the log")
    asyncio.run(checkpoint_then_tamper())
    result = cli(config, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert AUDIT_TAMPERING[case][1] in result.stderr, result.stderr


def test_audit_verify_fails_on_a_tail_rewritten_behind_an_older_checkpoint(
    config: Path, settings: Settings
) -> None:
    """Checkpoints at S and N, the events after S rewritten, the tree state pointed back at
    S and the stored tree dropped: no checkpoint is signed over the forgery, checkpoint N
    stays as it was, and `audit verify` names it."""

    async def checkpoint() -> None:
        async with open_services(settings) as svc:
            assert await checkpoints.write(svc.sessions, svc.store, svc.checkpoint_signer)

    async def attack() -> tuple[bytes, bytes]:
        async with open_services(settings) as svc:
            signer = svc.checkpoint_signer
            key = checkpoints.object_key(2)
            before = b"".join([c async for c in svc.store.read(key)])

            def forge(event: AuditEvent) -> None:
                if event.seq > 1:
                    event.actor_role = "admin"

            await rewrite(svc.engine, forge)
            await tamper(
                svc.engine,
                "UPDATE audit_tree_state SET checkpoint_key = :key, checkpoint_size = 1, "
                "leaves = 0 WHERE id = 1",
                params={"key": checkpoints.object_key(1)},
            )
            await tamper(svc.engine, "DELETE FROM audit_tree_nodes")
            with pytest.raises(CheckpointError):
                await checkpoints.write(svc.sessions, svc.store, signer)
            return before, b"".join([c async for c in svc.store.read(key)])

    ok(cli(config, "client", "add", "Acme"))
    asyncio.run(checkpoint())  # S = 1
    ok(cli(config, "client", "add", "Globex"))
    asyncio.run(checkpoint())  # N = 2
    before, after = asyncio.run(attack())
    assert after == before
    result = cli(config, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert "FAILED: checkpoint 2 does not match the log" in result.stderr, result.stderr
