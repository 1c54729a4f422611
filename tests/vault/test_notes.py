"""C2SP signed notes, checked against golang.org/x/mod/sumdb/note's published example."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.audit import notes
from vault.crypto.keyring import SigningKey
from vault.errors import NoteError

# golang.org/x/mod/sumdb/note, package documentation (the "PeterNeumann" example).
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# transparency-dev/formats note tests: a verifier key whose base64 holds a "+".
PLUS_KEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def _go_private() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SIGNER.split("+")[-2] + "+" + GO_SIGNER.split("+")[-1])
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_signing_reproduces_the_go_example_byte_for_byte() -> None:
    private = _go_private()
    assert notes.verifier_key("PeterNeumann", notes.raw_public(private.public_key())) == (
        GO_VERIFIER
    )
    assert notes.sign(GO_TEXT, "PeterNeumann", private) == GO_NOTE


def test_the_go_example_opens_and_a_changed_text_does_not() -> None:
    verifier = notes.parse_verifier_key(GO_VERIFIER)
    assert verifier.id.hex() == "c74f20a3"
    assert notes.open_note(GO_NOTE, verifier) == GO_TEXT
    with pytest.raises(NoteError, match="does not verify"):
        notes.open_note(GO_NOTE.replace("answer", "Answer"), verifier)
    other = notes.parse_verifier_key(PLUS_KEY)
    with pytest.raises(NoteError, match="no signature by TEST"):
        notes.open_note(GO_NOTE, other)


@pytest.mark.parametrize(
    "key",
    [
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),  # id does not match
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpjZBxQ8OEMHpDFvNhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "PeterNeumann+zz4f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(key: str) -> None:
    with pytest.raises(NoteError):
        notes.parse_verifier_key(key)


def test_checkpoint_round_trip_and_strict_parsing() -> None:
    signing = SigningKey("example.test/log", b"\x07" * 32, created=None)  # type: ignore[arg-type]
    private = signing.private_key()
    checkpoint = notes.Checkpoint("example.test/log", 12, b"\xab" * 32)
    note = notes.sign(checkpoint.text(), "example.test/log", private)
    lines = note.split("\n")
    assert lines[:4] == ["example.test/log", "12", base64.b64encode(b"\xab" * 32).decode(), ""]
    assert lines[4].startswith("\u2014 example.test/log ")
    verifier = notes.parse_verifier_key(
        notes.verifier_key("example.test/log", notes.raw_public(private.public_key()))
    )
    assert notes.parse_checkpoint(notes.open_note(note, verifier), "example.test/log") == (
        checkpoint
    )
    for bad in ("other/log\n12\nqw==\n", "example.test/log\n012\n", "example.test/log\n-1\n"):
        with pytest.raises(NoteError):
            notes.parse_checkpoint(bad + "\n", "example.test/log")
