"""CXP1 for resumable uploads: parts and the tags of the nonce-reuse guard (and the keyed
tags that earlier releases claimed with), and the segment sealer."""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.fixtures.crypto_objects import (
    CTX,
    DEK,
    KAT_HEADER,
    PREFIX,
    SALT,
    S,
    plaintext,
)
from vault import crypto
from vault.crypto import SegmentSealer
from vault.errors import NonceReuseError

# --- resumable uploads: parts and the nonce-reuse guard -------------------------------------


def test_parts_concatenate_to_the_streamed_object() -> None:
    k = 2
    data = plaintext(5 * S + 3, seed=9)
    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    parts = crypto.PartEncryptor(sealer, k)
    size = parts.part_size
    pieces = [parts.encrypt(p, data[(p - 1) * size : p * size], final=p == 3) for p in (1, 2, 3)]
    obj = b"".join(part.ciphertext for part in pieces)
    assert obj[:128] == KAT_HEADER
    assert obj == crypto.encrypt_object(SegmentSealer(DEK, CTX, SALT, PREFIX), data)
    assert crypto.decrypt_object(obj, CTX, DEK) == data
    assert [part.plaintext_size for part in pieces] == [2 * S, 2 * S, S + 3]


def test_empty_object_as_one_final_part() -> None:
    part = crypto.encrypt_part(SegmentSealer(DEK, CTX), 1, 4, b"", final=True)
    assert len(part.ciphertext) == crypto.object_size(0)
    assert crypto.decrypt_object(part.ciphertext, CTX, DEK) == b""


def test_a_part_sealed_again_with_the_same_bytes_is_the_same_ciphertext_and_tags() -> None:
    data = plaintext(4 * S, seed=4)
    header = SegmentSealer(DEK, CTX).header
    first = crypto.encrypt_part(
        SegmentSealer.from_header(DEK, header, CTX), 2, 2, data[2 * S :], final=True
    )
    # A new process resumes the session from its recorded header.
    again = crypto.encrypt_part(
        SegmentSealer.from_header(DEK, header, CTX), 2, 2, data[2 * S :], final=True
    )
    assert again.ciphertext == first.ciphertext
    assert again.tags == first.tags


def test_part_tags_are_the_segments_gcm_tags_and_differ_where_the_bytes_do() -> None:
    """The claim of the nonce-reuse guard: one tag per segment, the one stored after it, so a
    resend with one flipped bit differs in that segment's tag alone."""
    sealer = SegmentSealer(DEK, CTX)
    original = plaintext(3 * S, seed=5)
    part = crypto.encrypt_part(sealer, 1, 4, original, final=True)
    size = crypto.SEGMENT_TAG_SIZE
    assert len(part.tags) == 3 * size
    body = part.ciphertext[crypto.HEADER_SIZE :]
    stride = S + crypto.TAG_SIZE
    assert part.tags == b"".join(
        body[i + stride - crypto.TAG_SIZE : i + stride] for i in range(0, len(body), stride)
    )
    changed = bytearray(original)
    changed[S + 12345] ^= 1
    other = crypto.encrypt_part(sealer, 1, 4, bytes(changed), final=True)
    assert other.tags[:size] == part.tags[:size]
    assert other.tags[size : 2 * size] != part.tags[size : 2 * size]
    assert other.tags[2 * size :] == part.tags[2 * size :]
    # A short final segment's tag is the buffer's last 16 bytes.
    short = crypto.encrypt_part(sealer, 2, 4, plaintext(S + 10), final=True)
    assert short.tags[-size:] == bytes(short.ciphertext[-size:])


def test_part_sizes_are_checked() -> None:
    sealer = SegmentSealer(DEK, CTX)
    with pytest.raises(ValueError, match="before the final one"):
        crypto.encrypt_part(sealer, 1, 2, plaintext(2 * S - 1), final=False)
    with pytest.raises(ValueError, match="final part"):
        crypto.encrypt_part(sealer, 2, 2, b"", final=True)
    with pytest.raises(ValueError, match="final part"):
        crypto.encrypt_part(sealer, 1, 2, plaintext(2 * S + 1), final=True)
    with pytest.raises(ValueError, match="start at 1"):
        crypto.encrypt_part(sealer, 0, 2, plaintext(2 * S), final=False)


def test_a_sealer_serves_one_object_only() -> None:
    sealer = SegmentSealer(DEK, CTX)
    crypto.Encryptor(sealer)
    with pytest.raises(NonceReuseError):
        crypto.Encryptor(sealer)
    with pytest.raises(NonceReuseError):
        crypto.encrypt_part(sealer, 1, 1, b"x", final=True)
    parts = SegmentSealer(DEK, CTX)
    crypto.encrypt_part(parts, 1, 1, b"x", final=True)
    with pytest.raises(NonceReuseError):
        crypto.Encryptor(parts)


def test_legacy_fingerprint_is_keyed() -> None:
    data = plaintext(S)
    a, b = SegmentSealer(DEK, CTX), SegmentSealer(DEK, CTX)
    assert a.legacy_fingerprint(data) != b.legacy_fingerprint(data)
    assert hashlib.sha256(data).digest() not in (
        a.legacy_fingerprint(data),
        b.legacy_fingerprint(data),
    )


def test_sealers_never_share_a_key_and_prefix() -> None:
    seen_keys: set[bytes] = set()
    seen_prefixes: set[bytes] = set()
    ciphertexts: set[bytes] = set()
    for _ in range(200):
        sealer = SegmentSealer(DEK, CTX)  # same data key and ids every time
        header = crypto.Header.unpack(sealer.header)
        k_seg = HKDF(
            hashes.SHA256(), 32, header.salt, b"CXP1/seg-key\x00" + sealer.header[:96]
        ).derive(DEK)
        seen_keys.add(k_seg)
        seen_prefixes.add(header.nonce_prefix)
        ciphertexts.add(sealer.seal(0, b"same plaintext", last=True))
    assert len(seen_keys) == len(seen_prefixes) == len(ciphertexts) == 200


def test_seal_checks_segment_shape() -> None:
    sealer = SegmentSealer(DEK, CTX)
    with pytest.raises(ValueError, match="segments hold"):
        sealer.seal(0, b"short", last=False)
    with pytest.raises(ValueError, match="segments hold"):
        sealer.seal(1, b"", last=True)
    with pytest.raises(ValueError, match="outside"):
        sealer.seal(crypto.MAX_SEGMENTS, b"x", last=True)


def test_legacy_segment_tags_are_keyed_per_segment_so_any_prefix_can_be_checked() -> None:
    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    segment = sealer.segment_size
    data = random.Random(7).randbytes(3 * segment + 100)

    tags = sealer.legacy_segment_tags(data)

    size = crypto.SEGMENT_TAG_SIZE
    assert len(tags) == 4 * size
    # The tags of a prefix are a prefix of the tags: a shorter retry is checked exactly.
    assert sealer.legacy_segment_tags(data[: 2 * segment]) == tags[: 2 * size]
    assert sealer.legacy_segment_tags(data[segment : 2 * segment]) == tags[size : 2 * size]
    changed = bytearray(data)
    changed[segment + 5] ^= 1
    other = sealer.legacy_segment_tags(bytes(changed))
    assert other[:size] == tags[:size] and other[size : 2 * size] != tags[size : 2 * size]
    # Keyed by the object's fingerprint key: another data key tags the same bytes otherwise.
    assert SegmentSealer(bytes(32), CTX, SALT, PREFIX).legacy_segment_tags(data) != tags
    assert sealer.legacy_segment_tags(b"") == b""
