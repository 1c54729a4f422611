"""The verifiable log over HTTP: checkpoints, the verifier key and RFC 9162 proofs."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.fixtures.app import World, make_world
from vault import audit
from vault.audit import merkle, notes
from vault.db import transaction
from web.app import create_app
from web.services import open_services
from web.settings import AuditSettings, Settings

API = "/api/v1/audit"
PROOF_URLS = [
    f"{API}/checkpoint",
    f"{API}/checkpoint/key",
    f"{API}/proof/inclusion?seq=1&tree_size=1",
    f"{API}/proof/consistency?first=1&second=2",
]
KEY = re.compile(r"^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]{43}[A-Za-z0-9+/=])\n$")


async def _verifier(http: httpx.AsyncClient, world: World) -> notes.Verifier:
    response = await http.get(f"{API}/checkpoint/key", headers=world["otto"].auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert KEY.match(response.text), response.text
    return notes.parse_verifier_key(response.text)


async def _checkpoint(
    http: httpx.AsyncClient, world: World, verifier: notes.Verifier
) -> notes.Checkpoint:
    response = await http.get(f"{API}/checkpoint", headers=world["ada"].auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    return notes.parse_checkpoint(notes.open_note(response.text, verifier), verifier.name)


async def test_only_auditors_and_admins_reach_the_proofs(
    http: httpx.AsyncClient, world: World
) -> None:
    for url in PROOF_URLS:
        anonymous = await http.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["content-type"] == "application/problem+json"
        for name in ("alice", "bob", "sam", "gina"):
            denied = await http.get(url, headers=world[name].auth)
            # As every /audit route answers a signed-in caller without the permission.
            assert denied.status_code == 403, (url, name)
            assert denied.headers["content-type"] == "application/problem+json"
        for name in ("otto", "ada"):
            allowed = await http.get(url, headers=world[name].auth)
            assert allowed.status_code == 200, (url, name, allowed.text)
            assert allowed.headers["cache-control"] == "no-store"


async def test_checkpoint_is_a_signed_note_of_the_whole_log(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    verifier = await _verifier(http, world)
    checkpoint = await _checkpoint(http, world, verifier)
    assert checkpoint.origin == verifier.name
    raw = (await http.get(f"{API}/checkpoint", headers=world["otto"].auth)).text
    lines = raw.split("\n")
    assert lines[1].isdigit() and base64.b64decode(lines[2]) and lines[3] == ""
    assert lines[4].startswith(f"\u2014 {verifier.name} ") and lines[5:] == [""]
    # The key the API gives is the one in the keyring file (never in the database).
    assert verifier.name in Path(settings.keys_path).read_text()  # noqa: ASYNC240


async def test_inclusion_and_consistency_proofs_verify_against_checkpoints(
    http: httpx.AsyncClient, world: World
) -> None:
    otto = world["otto"].auth
    verifier = await _verifier(http, world)
    first = await _checkpoint(http, world, verifier)
    for _ in range(3):  # the log grows: each read is itself an event
        assert (await http.get(API, headers=otto)).status_code == 200
    # A checkpoint is written on export too; this one covers the newer events.
    assert (await http.get(f"{API}/export", headers=otto)).status_code == 200
    second = await _checkpoint(http, world, verifier)
    assert second.size > first.size
    for seq in (1, first.size, second.size):
        response = await http.get(
            f"{API}/proof/inclusion", params={"seq": seq, "tree_size": second.size}, headers=otto
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"leaf_index", "tree_size", "leaf_hash", "audit_path"}
        assert (body["leaf_index"], body["tree_size"]) == (seq - 1, second.size)
        path = [bytes.fromhex(h) for h in body["audit_path"]]
        leaf = bytes.fromhex(body["leaf_hash"])
        merkle.verify_inclusion(leaf, seq - 1, second.size, path, second.root)
    response = await http.get(
        f"{API}/proof/consistency",
        params={"first": first.size, "second": second.size},
        headers=otto,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"first", "second", "consistency_path"}
    assert (body["first"], body["second"]) == (first.size, second.size)
    path = [bytes.fromhex(h) for h in body["consistency_path"]]
    merkle.verify_consistency(
        first.size, second.size, path, first_root=first.root, second_root=second.root
    )


BAD = [
    ("inclusion", {"tree_size": "3"}),  # seq missing
    ("inclusion", {"seq": "1"}),
    ("inclusion", {"seq": "abc", "tree_size": "3"}),
    ("inclusion", {"seq": "-1", "tree_size": "3"}),
    ("inclusion", {"seq": "+1", "tree_size": "3"}),
    ("inclusion", {"seq": "0", "tree_size": "3"}),
    ("inclusion", {"seq": "1.0", "tree_size": "3"}),
    ("inclusion", {"seq": " 1", "tree_size": "3"}),
    ("inclusion", {"seq": "\u0661", "tree_size": "3"}),  # ARABIC-INDIC DIGIT ONE
    ("inclusion", {"seq": "\u00b2", "tree_size": "3"}),  # SUPERSCRIPT TWO
    ("inclusion", {"seq": "4", "tree_size": "3"}),  # beyond the tree
    ("inclusion", {"seq": "1", "tree_size": "999999"}),  # beyond the log
    ("inclusion", {"seq": "1", "tree_size": "9" * 40}),
    ("consistency", {"first": "1"}),
    ("consistency", {"first": "3", "second": "2"}),
    ("consistency", {"first": "0", "second": "2"}),
    ("consistency", {"first": "1", "second": "999999"}),
    ("consistency", {"first": "x", "second": "2"}),
]


@pytest.mark.parametrize(("proof", "params"), BAD)
async def test_bad_proof_parameters_are_400_problems(
    http: httpx.AsyncClient, world: World, proof: str, params: dict[str, str]
) -> None:
    response = await http.get(f"{API}/proof/{proof}", params=params, headers=world["otto"].auth)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400 and response.json()["detail"]


async def test_the_app_writes_checkpoints_while_the_log_grows(settings: Settings) -> None:
    fast = settings.model_copy(update={"audit": AuditSettings(checkpoint_interval_seconds=0.05)})
    async with open_services(fast) as svc:

        async def stored() -> list[str]:
            return [o.key async for o in svc.store.list("checkpoints/")]

        async def appear(count: int) -> None:
            for _ in range(200):  # polled: the writer is another task with its own clock
                if len(await stored()) >= count:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"no checkpoint {count} within 10 s")

        await make_world(svc)  # events, before any app process ran
        async with LifespanManager(create_app(fast)):
            await appear(1)
            async with transaction(svc.sessions) as session:
                await audit.append(session, audit.SYSTEM, "test.event")
            await appear(2)
            await asyncio.sleep(0.3)  # several rounds with no growth ...
            assert len(await stored()) == 2  # ... write nothing new
