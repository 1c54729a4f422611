"""The keyring: file creation and permissions, wrapping, rotation and re-wrapping."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vault import crypto
from vault.crypto.keyring import KeyEntry, KeyFile, Keyring, KeyringData
from vault.errors import KeyNotFoundError, KeyringError

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


def test_create_writes_one_active_key_with_mode_0600(path: Path) -> None:
    KeyFile.create(path)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert list(document["keys"]) == [document["active"]]
    assert re.fullmatch(r"kek-\d{8}-[0-9a-f]{8}", document["active"])
    entry = document["keys"][document["active"]]
    assert len(base64.b64decode(entry["key"], validate=True)) == 32
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["created"])
    assert Keyring(KeyFile(path)).active_id == document["active"]


def test_create_refuses_to_overwrite(path: Path) -> None:
    KeyFile.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="already exists"):
        KeyFile.create(path)
    assert path.read_bytes() == before


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_loose_permissions_are_refused(path: Path, mode: int) -> None:
    KeyFile.create(path)
    path.chmod(mode)
    with pytest.raises(KeyringError) as raised:
        Keyring(KeyFile(path))
    message = str(raised.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message


@posix_only
def test_owner_read_only_is_accepted(path: Path) -> None:
    KeyFile.create(path)
    path.chmod(0o400)
    Keyring(KeyFile(path))


def test_missing_file_is_a_clear_error(path: Path) -> None:
    with pytest.raises(KeyringError, match="does not exist"):
        Keyring(KeyFile(path))


KEY = base64.b64encode(bytes(32)).decode()
CREATED = "2026-01-01T00:00:00Z"


def keyring_json(active: str = "a", **entry: object) -> str:
    return json.dumps(
        {"version": 1, "active": active, "keys": {"a": {"key": KEY, "created": CREATED, **entry}}}
    )


def test_a_hand_written_file_loads(path: Path) -> None:
    path.write_text(keyring_json())
    path.chmod(0o600)
    assert Keyring(KeyFile(path)).active_id == "a"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"version": 2, "active": "a", "keys": {}}),
        json.dumps({"version": 1, "active": "a", "keys": {}}),
        json.dumps({"version": 1, "active": "a", "keys": {"a": "just a string"}}),
        keyring_json(active="b"),
        keyring_json(key="AAAA"),
        keyring_json(key="!!"),
        keyring_json(created="yesterday"),
    ],
    ids=[
        "not json",
        "not an object",
        "version 2",
        "no keys",
        "entry not an object",
        "active unknown",
        "short key",
        "bad base64",
        "bad date",
    ],
)
def test_malformed_files_are_refused(path: Path, content: str) -> None:
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError, match=re.escape(str(path))):
        Keyring(KeyFile(path))


def test_wrap_and_unwrap(path: Path) -> None:
    keyring = Keyring(KeyFile.create(path))
    dek = crypto.new_data_key()
    kek_id, wrapped = keyring.wrap(dek)
    assert kek_id == keyring.active_id
    assert len(wrapped) == 40  # RFC 3394: one 64-bit integrity block more than the key
    assert dek not in wrapped
    assert keyring.unwrap(kek_id, wrapped) == dek
    with pytest.raises(ValueError, match="32 bytes"):
        keyring.wrap(b"short")


def test_unknown_kek_id_names_the_id(path: Path) -> None:
    keyring = Keyring(KeyFile.create(path))
    _, wrapped = keyring.wrap(crypto.new_data_key())
    with pytest.raises(KeyNotFoundError, match="kek-20000101-deadbeef"):
        keyring.unwrap("kek-20000101-deadbeef", wrapped)


def test_wrong_key_or_corrupt_wrapped_key(path: Path, tmp_path: Path) -> None:
    keyring = Keyring(KeyFile.create(path))
    kek_id, wrapped = keyring.wrap(crypto.new_data_key())
    corrupt = bytes([wrapped[0] ^ 1]) + wrapped[1:]
    for bad in (corrupt, wrapped[:-8], b""):
        with pytest.raises(KeyringError, match=f"does not open under KEK {kek_id}$"):
            keyring.unwrap(kek_id, bad)
    # The same id in another keyring holds another key.
    other_path = tmp_path / "other.json"
    other = KeyFile.create(other_path)
    data = other.load()
    other.save(KeyringData(kek_id, {kek_id: data.keys[data.active]}))
    with pytest.raises(KeyringError, match=f"does not open under KEK {kek_id}") as raised:
        Keyring(other).unwrap(kek_id, wrapped)
    assert wrapped.hex() not in str(raised.value)


def test_rotate_keeps_old_keys_and_rewrap_moves_to_the_active_one(path: Path) -> None:
    keyring = Keyring(KeyFile.create(path))
    old_id = keyring.active_id
    dek = crypto.new_data_key()
    row = keyring.wrap(dek)
    new_id = keyring.rotate()
    assert new_id != old_id
    assert keyring.active_id == new_id
    assert set(keyring.key_ids) == {old_id, new_id}
    assert keyring.unwrap(*row) == dek
    # Persisted: a fresh load sees the rotation, still 0600, and no temporary file is left.
    reloaded = Keyring(KeyFile(path))
    assert reloaded.active_id == new_id
    assert reloaded.unwrap(*row) == dek
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]
    # Re-wrap: the result names the new active KEK and opens to the same data key.
    rewrapped = reloaded.rewrap(*row)
    assert rewrapped[0] == new_id
    assert rewrapped[1] != row[1]
    assert reloaded.unwrap(*rewrapped) == dek
    assert keyring.wrap(dek)[0] == new_id


def test_another_process_rotating_is_picked_up_on_demand(path: Path) -> None:
    server = Keyring(KeyFile.create(path))
    cli = Keyring(KeyFile(path))
    cli.rotate()
    row = cli.wrap(dek := crypto.new_data_key())
    assert server.unwrap(*row) == dek  # unknown id: the server re-reads the file once
    assert server.active_id == cli.active_id


def test_save_is_atomic(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = KeyFile.create(path)
    before = path.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        Keyring(source).rotate()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]


class MemorySource:
    """A stand-in for a KMS-backed source: anything with load() and save() will do."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.data = KeyringData("one", {"one": KeyEntry(bytes(32), now)})
        self.saves = 0

    def load(self) -> KeyringData:
        return self.data

    def save(self, data: KeyringData) -> None:
        self.data = data
        self.saves += 1


def test_other_key_sources_plug_in() -> None:
    source = MemorySource()
    keyring = Keyring(source)
    row = keyring.wrap(dek := crypto.new_data_key())
    new_id = keyring.rotate()
    assert source.saves == 1
    assert source.data.active == new_id
    assert keyring.rewrap(*row)[0] == new_id
    assert keyring.unwrap(*keyring.rewrap(*row)) == dek


def test_reprs_hold_no_key_material(path: Path) -> None:
    keyring = Keyring(KeyFile.create(path))
    data = KeyFile(path).load()
    key = data.keys[data.active].key
    for text in (repr(keyring), repr(data)):
        assert key.hex() not in text
        assert base64.b64encode(key).decode() not in text
        assert repr(key) not in text


# --- the audit checkpoint key ---------------------------------------------------------------


def test_a_new_keyring_holds_a_checkpoint_key(path: Path) -> None:
    KeyFile.create(path)
    document = json.loads(path.read_text())
    entry = document["checkpoint_key"]
    assert re.fullmatch(r"clientvault\.audit/[0-9a-f]{8}", entry["name"])
    assert len(base64.b64decode(entry["seed"], validate=True)) == 32
    signing = Keyring(KeyFile(path)).signing_key()
    assert signing.name == entry["name"]
    assert signing.seed == base64.b64decode(entry["seed"])
    assert signing.seed.hex() not in repr(signing)


def test_an_older_keyring_gets_a_checkpoint_key_on_first_use(path: Path) -> None:
    path.write_text(keyring_json())
    path.chmod(0o600)
    keyring = Keyring(KeyFile(path))
    signing = keyring.signing_key()
    stored = json.loads(path.read_text())
    assert stored["checkpoint_key"]["name"] == signing.name
    assert stored["active"] == "a" and list(stored["keys"]) == ["a"]  # KEKs untouched
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Kept from then on: by this process, by another one, and across a rotation.
    assert keyring.signing_key() == signing
    assert Keyring(KeyFile(path)).signing_key() == signing
    keyring.rotate()
    assert Keyring(KeyFile(path)).signing_key() == signing


class _SlowFile(KeyFile):
    """A key file read slowly and saved after `delay`, so that processes starting together
    all find no checkpoint key, then save one each, one after the other: the moment several
    nodes would each add a checkpoint key of their own."""

    def __init__(self, path: Path, delay: float) -> None:
        super().__init__(path)
        self.delay = delay

    def load(self) -> KeyringData:
        data = super().load()
        time.sleep(0.1)
        return data

    def save(self, data: KeyringData) -> None:
        time.sleep(self.delay)
        super().save(data)


def test_processes_starting_together_agree_on_one_checkpoint_key(path: Path) -> None:
    path.write_text(keyring_json())
    path.chmod(0o600)
    rings = [Keyring(_SlowFile(path, delay=0.3 * i)) for i in range(3)]
    with ThreadPoolExecutor(len(rings)) as pool:
        keys = list(pool.map(lambda ring: ring.signing_key(), rings))
    assert keys[0] == keys[1] == keys[2]
    assert Keyring(KeyFile(path)).signing_key() == keys[0]


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "a b", "seed": base64.b64encode(bytes(32)).decode(), "created": "2026-01-01"},
        {"name": "a+b", "seed": base64.b64encode(bytes(32)).decode(), "created": "2026-01-01"},
        {"name": "log", "seed": "AAAA", "created": "2026-01-01"},
        {"name": "log", "created": "2026-01-01"},
        "a string",
    ],
)
def test_a_malformed_checkpoint_key_is_refused(path: Path, entry: object) -> None:
    document = json.loads(keyring_json())
    document["checkpoint_key"] = entry
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    with pytest.raises(KeyringError, match="checkpoint"):
        Keyring(KeyFile(path))
