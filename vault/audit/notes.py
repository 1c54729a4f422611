"""C2SP signed notes with Ed25519, and the tlog-checkpoint body they carry.

signed-note (c2sp.org/signed-note): a text of UTF-8 lines ending in a newline, a blank
line, then one line per signature, `— <key name> <base64(key id || signature)>`. The key
id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), 0x01 being the
Ed25519 signature type; the signature covers the text only (through its final newline).
tlog-checkpoint (c2sp.org/tlog-checkpoint): the text is the origin, the tree size in
decimal, and the base64 root hash, one per line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vault.errors import NoteError

ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts every signature line


def _check_name(name: str) -> None:
    # signed-note: a key name is non-empty and holds neither "+" nor white space.
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"key name {name!r} may hold neither '+' nor white space")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key named `name` (signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public_key: bytes) -> str:
    """`<name>+<8 hex key id>+<base64(0x01 || public key)>`, the note verifier key format."""
    _check_name(name)
    encoded = base64.b64encode(ED25519 + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    id: bytes
    key: Ed25519PublicKey


def parse_verifier_key(text: str) -> Verifier:
    """Read a verifier key; raises NoteError when it is malformed or its id does not match."""
    parts = text.strip().split("+", 2)  # base64 may itself hold "+"
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<key id>+<key>")
    name, hex_id, encoded = parts
    _check_name(name)
    try:
        raw = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise NoteError("verifier key is not hex and base64") from None
    if len(raw) != 33 or raw[:1] != ED25519 or len(wanted) != 4:
        raise NoteError("not an Ed25519 verifier key")
    if key_id(name, raw[1:]) != wanted:
        raise NoteError("verifier key id does not match its name and key")
    return Verifier(name, wanted, Ed25519PublicKey.from_public_bytes(raw[1:]))


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: `text` (ending in a newline), a blank line, one signature line."""
    _check_name(name)
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("a note text ends in one newline and holds no blank line")
    signature = private_key.sign(text.encode())
    kid = key_id(name, raw_public(private_key.public_key()))
    return f"{text}\n{DASH} {name} {base64.b64encode(kid + signature).decode()}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of `note` once a signature by `verifier` checks out; raises NoteError."""
    text, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("a signed note is a text, a blank line and signature lines")
    text += "\n"
    for line in signatures[:-1].split("\n"):
        prefix = f"{DASH} {verifier.name} "
        if not line.startswith(prefix):
            continue  # signatures by other keys (e.g. witnesses) are not ours to check
        try:
            blob = base64.b64decode(line[len(prefix) :], validate=True)
        except binascii.Error:
            raise NoteError("signature line is not base64") from None
        if blob[:4] != verifier.id:
            continue
        try:
            verifier.key.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"signature by {verifier.name} does not verify") from None
        return text
    raise NoteError(f"note carries no signature by {verifier.name}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str, origin: str) -> Checkpoint:
    """The checkpoint in a note text (opened with `open_note`), for the expected origin."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != origin:
        raise NoteError(f"not a checkpoint of {origin}")
    size_text, root_text = lines[1], lines[2]
    # Decimal with no sign, no leading zeros (tlog-checkpoint).
    if not (size_text.isascii() and size_text.isdigit()) or (
        len(size_text) > 1 and size_text[0] == "0"
    ):
        raise NoteError("checkpoint tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise NoteError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise NoteError("checkpoint root is not a SHA-256 hash")
    return Checkpoint(origin, int(size_text), root)
