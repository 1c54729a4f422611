"""Exports checked offline: by `vault.audit.export_check`, by the stand-alone docs/verify_export.py
(in its own process, with only the standard library and `cryptography`) and by
`clientvault audit verify-export`, each catching every tampering the export may suffer."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from tests.fixtures.app import World
from tests.fixtures.tamper import rewrite, tamper
from vault.audit import export_check
from vault.db import transaction
from vault.models import AuditEvent, AuditTreeState
from web.cli import main
from web.services import Services

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "verify_export.py"
Lines = list[dict[str, Any]]


def test_the_stand_alone_script_is_the_checker_the_cli_runs() -> None:
    assert SCRIPT.read_bytes() == (ROOT / "vault" / "audit" / "export_check.py").read_bytes()


def test_the_auditors_guide_walks_through_the_offline_check() -> None:
    guide = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    for step in ("verify_export.py", "--key", "clientvault audit key", "FAILED"):
        assert step in guide, step
    assert "docs/audit.md" in SCRIPT.read_text(encoding="utf-8")
    assert "(docs/audit.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


async def _activity(http: httpx.AsyncClient, world: World) -> str:
    """Some events worth exporting, with values CSV must defuse and non-ASCII text."""
    response = await http.put(
        f"{API}/folders/{world.acme_folder}/files/{quote('=SUM(A1) résumé.txt')}",
        content=b"x",
        headers={**world["alice"].auth, "User-Agent": "-agent"},
    )
    assert response.status_code == 201
    document_id: str = response.json()["document_id"]
    await http.get(f"{API}/documents/{document_id}", headers=world["sam"].auth)
    await http.get(f"{API}/documents/{document_id}/content", headers=world["alice"].auth)
    return document_id


async def _export(
    http: httpx.AsyncClient, world: World, tmp_path: Path, name: str, **params: str
) -> Path:
    response = await http.get(f"{API}/audit/export", params=params, headers=world["otto"].auth)
    assert response.status_code == 200, response.text
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


async def _key(http: httpx.AsyncClient, world: World, tmp_path: Path) -> Path:
    response = await http.get(f"{API}/audit/checkpoint/key", headers=world["otto"].auth)
    path = tmp_path / "checkpoint.key"
    path.write_text(response.text)
    return path


def _verdicts(export: Path, key: Path) -> list[tuple[int, str]]:
    """Exit status and output of each of the three verifiers; they must agree."""
    script = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(export), "--key", str(key)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=export.parent,  # nothing of the project on its path: stdlib and cryptography only
    )
    cli = CliRunner().invoke(main, ["audit", "verify-export", str(export), "--key", str(key)])
    module = export_check.main([str(export), "--key", str(key)])
    assert script.returncode == cli.exit_code == module, (script, cli.output)
    return [(script.returncode, script.stdout + script.stderr), (cli.exit_code, cli.output)]


def assert_verifies(export: Path, key: Path, kind: str) -> None:
    for status, output in _verdicts(export, key):
        assert status == 0, output
        assert output.startswith("ok: ") and kind in output, output


def assert_fails(export: Path, key: Path, reason: str) -> None:
    for status, output in _verdicts(export, key):
        assert status == 1, output
        assert "FAILED" in output and reason in output, output


def _lines(path: Path) -> Lines:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: Lines) -> Path:
    text = "".join(
        json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for x in lines
    )
    out = path.with_name("tampered-" + path.name)
    out.write_text(text)
    return out


def _rehash(lines: Lines) -> Lines:
    """Recompute every leaf hash and `prev` link, as a careful forger would."""
    prev = "0" * 64
    for line in lines[:-1]:
        line["prev"] = prev
        line.pop("leaf_hash")
        canonical = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        line["leaf_hash"] = prev = hashlib.sha256(b"\x00" + canonical.encode()).hexdigest()
    return lines


def _altered(lines: Lines) -> Lines:
    lines[2]["actor_role"] = "admin"
    return lines


def _deleted(lines: Lines) -> Lines:
    del lines[3]
    return lines


def _swapped(lines: Lines) -> Lines:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _truncated(lines: Lines) -> Lines:
    return [*lines[:-2], lines[-1]]  # the last event gone, the checkpoint line kept


def _rewritten(lines: Lines) -> Lines:
    return _rehash(_altered(lines))


TAMPERING: dict[str, tuple[Callable[[Lines], Lines], str]] = {
    "altered field": (_altered, "event 3 was altered"),
    "altered and rehashed": (lambda x: _rehash(_altered(x)), "do not form the log"),
    "deleted event": (_deleted, "event 4 is missing"),
    "swapped events": (_swapped, "out of order"),
    "truncated tail": (_truncated, "do not form the log"),
    "rewritten consistently": (_rewritten, "do not form the log"),
}


async def test_a_full_jsonl_export_verifies_offline(
    http: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    await _activity(http, world)
    export = await _export(http, world, tmp_path, "audit.jsonl")
    key = await _key(http, world, tmp_path)
    assert_verifies(export, key, "complete log")
    trailer = _lines(export)[-1]
    assert set(trailer) == {"checkpoint", "manifest", "tree_size"}
    assert trailer["tree_size"] == len(_lines(export)) - 1


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_every_tampering_of_a_jsonl_export_is_named(
    http: httpx.AsyncClient, world: World, tmp_path: Path, case: str
) -> None:
    await _activity(http, world)
    export = await _export(http, world, tmp_path, "audit.jsonl")
    key = await _key(http, world, tmp_path)
    change, reason = TAMPERING[case]
    assert_fails(_write(export, change(_lines(export))), key, reason)


async def test_an_export_cut_short_is_refused(
    http: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    await _activity(http, world)
    export = await _export(http, world, tmp_path, "audit.jsonl")
    key = await _key(http, world, tmp_path)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(export.read_bytes()[: export.stat().st_size // 2])
    assert_fails(cut, key, "ends without its checkpoint line")
    # And a key other than the log's does not vouch for it.
    other = tmp_path / "other.key"
    other.write_text("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n")
    assert_fails(export, other, "no signature by PeterNeumann")


async def test_a_filtered_export_proves_each_event_and_the_selection(
    http: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    document_id = await _activity(http, world)
    export = await _export(http, world, tmp_path, "doc.jsonl", document_id=document_id)
    key = await _key(http, world, tmp_path)
    assert_verifies(export, key, "filtered export")
    lines = _lines(export)
    assert len(lines) >= 4 and all("audit_path" in line for line in lines[:-1])
    assert_fails(_write(export, _deleted(_lines(export))), key, "an event was removed")
    assert_fails(_write(export, _swapped(_lines(export))), key, "out of order")
    edited = _lines(export)
    edited[1]["ip"] = "198.51.100.7"
    assert_fails(_write(export, edited), key, "event")
    # A forger who rehashes the edited event still cannot place it in the signed tree.
    forged = _lines(export)
    forged[1]["ip"] = "198.51.100.7"
    forged[1].pop("leaf_hash")
    path = forged[1].pop("audit_path")
    canonical = json.dumps(forged[1], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    forged[1]["leaf_hash"] = hashlib.sha256(b"\x00" + canonical.encode()).hexdigest()
    forged[1]["audit_path"] = path
    assert_fails(_write(export, forged), key, f"event {forged[1]['seq']} is not in the log")


def _zip_with(source: Path, csv_text: str) -> Path:
    out = source.with_name("tampered-" + source.name)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            new.writestr(name, csv_text if name == "audit.csv" else old.read(name))
    return out


def _csv_rows(export: Path) -> list[list[str]]:
    with zipfile.ZipFile(export) as archive:
        text = archive.read("audit.csv").decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


@pytest.mark.parametrize("filtered", [False, True])
async def test_a_csv_export_is_a_zip_that_verifies_and_catches_edits(
    http: httpx.AsyncClient, world: World, tmp_path: Path, filtered: bool
) -> None:
    document_id = await _activity(http, world)
    params = {"format": "csv", **({"document_id": document_id} if filtered else {})}
    export = await _export(http, world, tmp_path, "audit-csv.zip", **params)
    key = await _key(http, world, tmp_path)
    with zipfile.ZipFile(export) as archive:
        assert archive.namelist() == ["audit.csv", "audit.checkpoint", "audit.proof.jsonl"]
        checkpoint = archive.read("audit.checkpoint").decode()
        assert checkpoint.split("\n")[3] == ""  # a signed note: text, blank line, signatures
    assert_verifies(export, key, "filtered export" if filtered else "complete log")
    rows = _csv_rows(export)
    assert any(cell == "'-agent" for row in rows for cell in row)  # still defused
    header = rows[0]
    edited = [list(r) for r in rows]
    edited[2][header.index("actor_role")] = "admin"
    assert_fails(_zip_with(export, _csv_text(edited)), key, f"event {edited[2][0]} was altered")
    removed = [*rows[:2], *rows[3:]]
    reason = "an event was removed" if filtered else f"event {rows[2][0]} is missing"
    assert_fails(_zip_with(export, _csv_text(removed)), key, reason)


async def test_an_event_altered_in_the_database_shows_in_the_export(
    http: httpx.AsyncClient, world: World, services: Services, tmp_path: Path
) -> None:
    await _activity(http, world)
    await tamper(services.engine, "UPDATE audit_events SET ip = '192.0.2.66' WHERE seq = 5")
    export = await _export(http, world, tmp_path, "audit.jsonl")
    assert_fails(export, await _key(http, world, tmp_path), "event 5 was altered")


async def test_no_export_is_signed_over_a_rewritten_log(
    http: httpx.AsyncClient, world: World, services: Services, tmp_path: Path
) -> None:
    await _activity(http, world)
    await _export(http, world, tmp_path, "before.jsonl")  # checkpoints the honest log

    def promote(event: AuditEvent) -> None:
        if event.seq == 2:
            event.actor_role = "admin"

    await rewrite(services.engine, promote)
    response = await http.get(f"{API}/audit/export", headers=world["otto"].auth)
    assert response.status_code == 500
    assert response.json()["title"] == "Audit log failed its integrity check"


async def _tree_state(services: Services) -> tuple[int, str]:
    """The checkpoint the database names: (tree size, object key)."""
    async with transaction(services.sessions) as session:
        state = await session.get(AuditTreeState, 1)
        assert state is not None and state.checkpoint_key is not None
        return state.checkpoint_size, state.checkpoint_key


async def test_a_tail_rewrite_behind_an_older_checkpoint_gets_no_export(
    http: httpx.AsyncClient, world: World, services: Services, tmp_path: Path
) -> None:
    """Events after checkpoint S rewritten, the tree state pointed back at S and the stored
    tree dropped: the export refuses (500) rather than sign the forged tail over checkpoint
    N, and the checkpoint served is still N, whatever the database names."""
    document_id = await _activity(http, world)
    await _export(http, world, tmp_path, "first.jsonl")
    state = await _tree_state(services)
    await http.get(f"{API}/documents/{document_id}/content", headers=world["sam"].auth)
    await _export(http, world, tmp_path, "second.jsonl")
    honest = (await http.get(f"{API}/audit/checkpoint", headers=world["otto"].auth)).text
    newest = await _tree_state(services)

    def forge(event: AuditEvent) -> None:
        if event.seq > state[0]:
            event.actor_role = "admin"

    await rewrite(services.engine, forge)
    await tamper(
        services.engine,
        "UPDATE audit_tree_state SET checkpoint_key = :key, checkpoint_size = :size, "
        "leaves = 0 WHERE id = 1",
        params={"key": state[1], "size": state[0]},
    )
    await tamper(services.engine, "DELETE FROM audit_tree_nodes")
    response = await http.get(f"{API}/audit/export", headers=world["otto"].auth)
    assert response.status_code == 500
    assert response.json()["title"] == "Audit log failed its integrity check"
    served = await http.get(f"{API}/audit/checkpoint", headers=world["otto"].auth)
    assert served.text == honest
    stored = b"".join([c async for c in services.store.read(newest[1])])
    assert stored.decode() == honest
