"""Key-encryption keys (KEKs): where they live, and wrapping data keys under them.

Each object version's data key (DEK) is wrapped with AES key wrap (RFC 3394) under the
active KEK. The database row stores the KEK's id and the wrapped key. Rotation adds a new
active KEK and keeps the old ones; re-wrapping moves rows to the new KEK without touching
stored objects. See docs/encryption.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from vault.errors import KeyNotFoundError, KeyringError

KEYRING_VERSION = 1
KEK_SIZE = 32
DEK_SIZE = 32
MAX_ID_LENGTH = 64  # the width of `versions.kek_id`


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One KEK. The key bytes never appear in a repr."""

    key: bytes = field(repr=False)
    created: datetime


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The Ed25519 key that signs audit checkpoints, and the log name it signs as.

    It lives here, beside the KEKs and never in the database, so that whoever can rewrite
    the database still cannot sign a checkpoint for the rewritten log.
    """

    name: str
    seed: bytes = field(repr=False)
    created: datetime

    def private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)


@dataclass(frozen=True, slots=True)
class KeyringData:
    """Every KEK by id, which one new data keys are wrapped under, and the signing key."""

    active: str
    keys: Mapping[str, KeyEntry]
    signing: SigningKey | None = None


class KeySource(Protocol):
    """Where KEKs are kept: a file today, a KMS later."""

    def load(self) -> KeyringData:
        """Read the keyring. Raises KeyringError if it is missing or unusable."""
        ...

    def save(self, data: KeyringData) -> None:
        """Replace the stored keyring with `data`, atomically."""
        ...


def new_kek_id(now: datetime | None = None) -> str:
    """A KEK id such as `kek-20261123-9f1c0a7e`: creation date, then 32 random bits."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"kek-{day}-{secrets.token_hex(4)}"


def _fresh(existing: Mapping[str, KeyEntry]) -> tuple[str, KeyEntry]:
    now = datetime.now(UTC).replace(microsecond=0)
    kek_id = new_kek_id(now)
    while kek_id in existing:
        kek_id = new_kek_id(now)
    return kek_id, KeyEntry(secrets.token_bytes(KEK_SIZE), now)


def new_signing_key() -> SigningKey:
    """A fresh checkpoint key; the log name carries 32 random bits so two portals differ."""
    now = datetime.now(UTC).replace(microsecond=0)
    return SigningKey(f"clientvault.audit/{secrets.token_hex(4)}", secrets.token_bytes(32), now)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(data: KeyringData) -> bytes:
    keys = {
        kek_id: {
            "key": base64.b64encode(entry.key).decode("ascii"),
            "created": _stamp(entry.created),
        }
        for kek_id, entry in sorted(data.keys.items())
    }
    document: dict[str, Any] = {"version": KEYRING_VERSION, "active": data.active, "keys": keys}
    if data.signing is not None:
        document["checkpoint_key"] = {
            "name": data.signing.name,
            "seed": base64.b64encode(data.signing.seed).decode("ascii"),
            "created": _stamp(data.signing.created),
        }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _decode(raw: bytes, where: str) -> KeyringData:
    def bad(reason: str) -> KeyringError:
        return KeyringError(f"keyring {where} is not usable: {reason}")

    try:
        document: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("not valid JSON") from None
    if not isinstance(document, dict) or document.get("version") != KEYRING_VERSION:
        raise bad(f"expected a JSON object with version {KEYRING_VERSION}")
    entries = document.get("keys")
    if not isinstance(entries, dict) or not entries:
        raise bad('"keys" must be a non-empty object')
    keys: dict[str, KeyEntry] = {}
    for kek_id, entry in entries.items():
        if not 0 < len(kek_id) <= MAX_ID_LENGTH:
            raise bad(f"KEK ids are 1..{MAX_ID_LENGTH} characters")
        try:
            key = base64.b64decode(entry["key"], validate=True)
            created = datetime.fromisoformat(entry["created"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise bad(f'KEK {kek_id} needs a base64 "key" and an ISO 8601 "created"') from None
        if len(key) != KEK_SIZE:
            raise bad(f"KEK {kek_id} is not {KEK_SIZE} bytes")
        keys[kek_id] = KeyEntry(key, created)
    active = document.get("active")
    if not isinstance(active, str) or active not in keys:
        raise bad('"active" must name one of the keys')
    return KeyringData(active, keys, _decode_signing(document.get("checkpoint_key"), bad))


def _decode_signing(raw: Any, bad: Callable[[str], KeyringError]) -> SigningKey | None:
    if raw is None:
        return None  # a keyring from before signed checkpoints; one is added on first use
    try:
        name, seed = raw["name"], base64.b64decode(raw["seed"], validate=True)
        created = datetime.fromisoformat(raw["created"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise bad('"checkpoint_key" needs a "name", a base64 "seed" and a "created"') from None
    if not isinstance(name, str) or not name or "+" in name or any(c.isspace() for c in name):
        raise bad("the checkpoint key name may hold neither '+' nor white space")
    if len(seed) != 32:
        raise bad("the checkpoint key seed is not 32 bytes")
    return SigningKey(name, seed, created)


def _fsync_dir(directory: Path) -> None:
    # Makes a create or rename durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class KeyFile:
    """A keyring in a JSON file, readable by its owner only (mode 0600)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r})"

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> KeyFile:
        """Write a new keyring holding one active KEK, with mode 0600.

        Raises:
            KeyringError: the file already exists (it is never overwritten).
        """
        target = Path(path)
        kek_id, entry = _fresh({})
        payload = _encode(KeyringData(kek_id, {kek_id: entry}, new_signing_key()))
        try:
            # O_EXCL: never replace an existing keyring (that would orphan every data key).
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyringError(
                f"keyring {target} already exists; refusing to overwrite it"
            ) from None
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # the umask may only have narrowed it; make it exact
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        _fsync_dir(target.parent)
        return cls(target)

    def load(self) -> KeyringData:
        """Read and check the keyring.

        Raises:
            KeyringError: missing, unreadable, group- or world-accessible (POSIX), or malformed.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise KeyringError(
                f"keyring {self.path} does not exist; `clientvault init` creates it"
            ) from None
        except OSError as exc:
            raise KeyringError(f"cannot open keyring {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as file:
            # fstat on the open descriptor: the file checked is the file read.
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            if os.name == "posix" and mode & 0o077:
                raise KeyringError(
                    f"keyring {self.path} has mode {mode:04o}, so other users may read or "
                    f"change it; run `chmod 600 {self.path}`"
                )
            try:
                raw = file.read()
            except OSError as exc:
                raise KeyringError(f"cannot read keyring {self.path}: {exc.strerror}") from None
        return _decode(raw, str(self.path))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock (flock on `.<name>.lock` beside the file, left there) while
        adding the checkpoint key, so that processes doing so at once take turns instead of
        the last save silently undoing another's (several nodes at their first start on a
        keyring made before checkpoints). NFSv4 passes flock on as a lock of its own."""
        if fcntl is None:  # no flock on this platform: nothing to take turns with
            yield
            return
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self, data: KeyringData) -> None:
        """Replace the file atomically: a temporary file (0600) in the same directory,
        fsynced, then renamed over the old one, so a crash leaves old or new, never torn.
        """
        payload = _encode(data)
        directory = self.path.parent
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _fsync_dir(directory)


class Keyring:
    """Wraps and unwraps data keys under the KEKs of a `KeySource`.

    The source is read once, here; a missing KEK id triggers one re-read, since another
    process may have rotated meanwhile.
    """

    def __init__(self, source: KeySource) -> None:
        self._source = source
        self._data = source.load()

    def __repr__(self) -> str:
        return f"Keyring({self._source!r}, active={self._data.active!r})"

    @property
    def active_id(self) -> str:
        """The id of the KEK new data keys are wrapped under."""
        return self._data.active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every KEK id the keyring holds."""
        return tuple(sorted(self._data.keys))

    def reload(self) -> None:
        """Re-read the source (after a rotation by another process)."""
        self._data = self._source.load()

    def _kek(self, kek_id: str) -> bytes:
        entry = self._data.keys.get(kek_id)
        if entry is None:
            self.reload()
            entry = self._data.keys.get(kek_id)
        if entry is None:
            raise KeyNotFoundError(f"KEK {kek_id} is not in the keyring")
        return entry.key

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK (RFC 3394). Returns (kek_id, wrapped)."""
        if len(dek) != DEK_SIZE:
            raise ValueError("a data key is 32 bytes")
        active = self._data.active
        return active, aes_key_wrap(self._data.keys[active].key, dek)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Open a wrapped data key.

        Raises:
            KeyNotFoundError: no KEK with this id, even after re-reading the source.
            KeyringError: the wrapped key fails RFC 3394's integrity check (wrong KEK or
                corrupted bytes).
        """
        kek = self._kek(kek_id)
        try:
            dek = aes_key_unwrap(kek, wrapped)
        except (InvalidUnwrap, ValueError):
            dek = b""
        if len(dek) != DEK_SIZE:
            raise KeyringError(f"wrapped data key does not open under KEK {kek_id}")
        return dek

    def derive(self, purpose: bytes, kek_id: str | None = None) -> tuple[str, bytes]:
        """A 32-byte key for another `purpose` (e.g. signing email links), derived from a KEK
        with HKDF-SHA256, so no other use ever holds a KEK itself. Returns (kek_id, key);
        the active KEK unless `kek_id` names another.

        Raises:
            KeyNotFoundError: no KEK with this id, even after re-reading the source.
        """
        chosen = kek_id or self._data.active
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
        return chosen, hkdf.derive(self._kek(chosen))

    def rotate(self) -> str:
        """Add a new KEK, make it active, persist; old KEKs stay. Returns the new id."""
        self.reload()  # build on what is stored now, not on what this process read earlier
        kek_id, entry = _fresh(self._data.keys)
        data = KeyringData(kek_id, {**self._data.keys, kek_id: entry}, self._data.signing)
        self._source.save(data)
        self._data = data
        return kek_id

    def _turn(self) -> contextlib.AbstractContextManager[None]:
        locked: Callable[[], contextlib.AbstractContextManager[None]] | None = getattr(
            self._source, "locked", None
        )
        return locked() if locked is not None else contextlib.nullcontext()

    def signing_key(self) -> SigningKey:
        """The audit checkpoint key, added to (and saved in) a keyring that has none yet."""
        if self._data.signing is None:
            self.reload()
        if self._data.signing is None:
            # Under the source's lock, so that of several processes starting at once exactly
            # one adds the key and the others read it back: each adding its own, the last
            # save winning, would leave checkpoints signed by a key the log no longer has.
            with self._turn():
                self.reload()
                if self._data.signing is None:
                    self._source.save(replace(self._data, signing=new_signing_key()))
                    self.reload()
        signing = self._data.signing
        if signing is None:
            raise KeyringError("the keyring did not keep its checkpoint key")
        return signing

    def rewrap(self, kek_id: str, wrapped: bytes) -> tuple[str, bytes]:
        """Re-wrap a data key under the active KEK. Returns (active_id, new_wrapped)."""
        return self.wrap(self.unwrap(kek_id, wrapped))
