"""The systemd units shipped in docs/deploy/ start real `clientvault` commands."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from web.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
CONFIG = "/etc/clientvault/clientvault.toml"
EXPECTED = {
    "clientvault.service": [["serve"]],
    "clientvault-notify.service": [["notify", "run"]],
    "clientvault-maintenance.service": [["gc"], ["fsck"], ["audit", "verify"]],
    "clientvault-backup.service": [["backup"]],
}


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) (keys may repeat, as ExecStart)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def command_of(exec_start: str) -> list[str]:
    """The clientvault argument list of an ExecStart, through a `sh -c` wrapper if any."""
    argv = shlex.split(exec_start.replace("%%", "%"))
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(argv[2])
        assert argv[0] == "exec", "the shell must hand over to clientvault (signals, exit code)"
        argv = argv[1:]
    return argv


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_unit_runs_a_clientvault_command_that_exists(name: str, tmp_path: Path) -> None:
    sections = unit(DEPLOY / name)
    service = dict(sections["Service"])
    assert service["User"] == "clientvault" and service["UMask"] == "0077"
    assert ("Environment", f"CLIENTVAULT_CONFIG={CONFIG}") in sections["Service"]
    commands = [command_of(v) for k, v in sections["Service"] if k == "ExecStart"]
    assert len(commands) == len(EXPECTED[name])
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    config = tmp_path / "clientvault.toml"
    config.write_text(f'data_dir = "{data_dir}"\n', encoding="utf-8")
    for argv, expected in zip(commands, EXPECTED[name], strict=True):
        binary, flag, path, *args = argv
        assert binary.endswith("/.venv/bin/clientvault") and (flag, path) == ("--config", CONFIG)
        assert args[: len(expected)] == expected, argv
        # Click refuses an unknown command or option before it acts on --help.
        result = CliRunner().invoke(main, ["--config", str(config), *args, "--help"])
        assert result.exit_code == 0, f"{name}: {argv}: {result.output}"
        assert result.output.startswith("Usage: ")


def test_the_app_node_unit_keeps_the_service_confined() -> None:
    service = dict(unit(DEPLOY / "clientvault.service")["Service"])
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/clientvault"
    assert service["Environment"] in ("MALLOC_ARENA_MAX=2", f"CLIENTVAULT_CONFIG={CONFIG}")
    assert service["KillSignal"] == "SIGTERM"


@pytest.mark.parametrize("name", ["clientvault-maintenance", "clientvault-backup"])
def test_every_timer_has_its_oneshot_service(name: str) -> None:
    timer = dict(unit(DEPLOY / f"{name}.timer")["Timer"])
    assert timer["OnCalendar"] and timer["Persistent"] == "true"
    assert dict(unit(DEPLOY / f"{name}.service")["Service"])["Type"] == "oneshot"
