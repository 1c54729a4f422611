"""CXP1's format: the known-answer vector, object sizes, round trips and ranged reads."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.fixtures.crypto_objects import (
    CTX,
    DEK,
    KAT_HEADER,
    PREFIX,
    SALT,
    STRIDE,
    S,
    chunks_of,
    encrypt,
    plaintext,
    read_range,
    segment_bounds,
)
from vault import crypto
from vault.crypto import SegmentSealer
from vault.crypto.stream import OVERLAP_MIN
from vault.errors import FormatError

KAT_K_SEG = "72262ce85e8722b1a7e659a97a85af2f71d138eb058fa9e33d41fabe9da4b43e"
KAT_COMMIT = "26f33003070231ce5ddd087cf50dababf751f0afe0ee72ce1edaecb26f629b4f"
KAT_NONCE_0 = "404142434445460000000001"
KAT_C_0 = "e38c495f53ac0bd4cf1f7d4efa6015db16ba516a32"
KAT_OBJECT_SHA256 = "8c5304269b5f2544f06e519b8052b189210378806b2bc27425decfc35e722575"
KAT_K_FP = "47f2264526b04259e9653ce3446189886a9589d0f2bb3e67c9253bd0952cb893"
KAT_FINGERPRINT = "8e9113d92fd9d222dd4dcffa25484f2cb2d96d4cb5ed62c1f4512fcc34e999e4"


# --- known-answer vector -------------------------------------------------------------


def test_known_answer_vector() -> None:
    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    obj = crypto.encrypt_object(sealer, b"hello")
    assert sealer.header == KAT_HEADER
    assert obj[96:128].hex() == KAT_COMMIT
    assert obj[128:].hex() == KAT_C_0
    assert len(obj[128:]) == 21
    assert len(obj) == 149 == crypto.object_size(5)
    assert hashlib.sha256(obj).hexdigest() == KAT_OBJECT_SHA256
    # An independent derivation from the written spec reproduces the vector.
    h96 = obj[:96]
    k_seg = HKDF(hashes.SHA256(), 32, SALT, b"CXP1/seg-key\x00" + h96).derive(DEK)
    commit = HKDF(hashes.SHA256(), 32, SALT, b"CXP1/commit\x00" + h96).derive(DEK)
    assert k_seg.hex() == KAT_K_SEG
    assert commit.hex() == KAT_COMMIT
    nonce = PREFIX + (0).to_bytes(4, "big") + b"\x01"
    assert nonce.hex() == KAT_NONCE_0
    assert AESGCM(k_seg).encrypt(nonce, b"hello", None).hex() == KAT_C_0
    assert crypto.decrypt_object(obj, CTX, DEK) == b"hello"
    k_fp = HKDF(hashes.SHA256(), 32, SALT, b"CXP1/part-fingerprint\x00" + h96).derive(DEK)
    assert k_fp.hex() == KAT_K_FP
    assert hmac.new(k_fp, b"hello", hashlib.sha256).hexdigest() == KAT_FINGERPRINT
    assert sealer.legacy_fingerprint(b"hello").hex() == KAT_FINGERPRINT


def test_header_pack_unpack() -> None:
    header = crypto.Header.unpack(KAT_HEADER)
    assert header.context == CTX
    assert (header.salt, header.nonce_prefix, header.segment_shift) == (SALT, PREFIX, 16)
    assert header.key_commitment.hex() == KAT_COMMIT
    assert header.pack() == KAT_HEADER
    assert crypto.Header.unpack(KAT_HEADER + b"more object bytes") == header


# --- sizes and round trips -------------------------------------------------------------

SIZES = [0, 1, S - 1, S, S + 1, 3 * S, 3 * S + 7, 5 * 2**20 + 12345]


@pytest.mark.parametrize("size", SIZES)
def test_sizes(size: int) -> None:
    n = max(1, -(-size // S))
    total = crypto.object_size(size)
    assert total == 128 + size + 16 * n
    assert crypto.segment_count(total) == n
    assert crypto.plaintext_size(total) == size


@pytest.mark.parametrize(
    "bad", [0, 127, 128, 143, 128 + STRIDE + 16, 128 + STRIDE + 15, 128 + 2 * STRIDE + 8]
)
def test_impossible_object_sizes_are_rejected(bad: int) -> None:
    with pytest.raises(FormatError, match="not a valid CXP1 object size"):
        crypto.plaintext_size(bad)


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_with_random_chunking(size: int) -> None:
    data = plaintext(size, seed=size)
    for seed in (1, 2):
        encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX))
        out: list[bytes] = []
        for chunk in chunks_of(data, random.Random(seed)):
            out += encryptor.feed(chunk)
        out += encryptor.finish()
        obj = b"".join(out)
        assert len(obj) == crypto.object_size(size)
        assert encryptor.plaintext_size == size
        assert encryptor.sha256_hex == hashlib.sha256(data).hexdigest()
        assert crypto.decrypt_object(obj, CTX, DEK) == data


def test_encryptor_output_order_and_holdback() -> None:
    encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX, SALT, PREFIX))
    first = encryptor.feed(b"a" * S)
    assert first == [KAT_HEADER]  # a full segment is held back: it might be the last
    assert encryptor.feed(b"") == []
    second = encryptor.feed(b"b")
    assert [len(x) for x in second] == [STRIDE]
    more = encryptor.feed(b"c" * (10 * S))
    assert [len(x) for x in more] == [STRIDE] * 10  # holds back at most one segment
    last = encryptor.finish()
    assert [len(x) for x in last] == [1 + 16]
    with pytest.raises(RuntimeError):
        encryptor.feed(b"x")


@pytest.mark.parametrize(
    "sizes",
    [
        # Large chunks, hashed beside their sealing, around small ones hashed in line, with
        # bytes held back between them (and a large chunk that is all whole segments).
        (100, OVERLAP_MIN, 7, 3 * OVERLAP_MIN + 5, S - 1, OVERLAP_MIN - 1),
        (OVERLAP_MIN + S,),
        (S, 2 * OVERLAP_MIN, 1),
    ],
)
def test_large_chunks_hashed_on_another_thread_give_the_same_object(
    sizes: tuple[int, ...],
) -> None:
    data = plaintext(sum(sizes), seed=len(sizes))
    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    encryptor = crypto.Encryptor(sealer)
    out: list[bytes] = []
    at = 0
    for size in sizes:
        out += encryptor.feed(memoryview(data)[at : at + size])
        at += size
    out += encryptor.finish()
    assert encryptor.sha256_hex == hashlib.sha256(data).hexdigest()
    # Byte for byte what one segment at a time gives.
    reference = crypto.Encryptor(SegmentSealer(DEK, CTX, SALT, PREFIX))
    expected = [piece for i in range(0, len(data), S) for piece in reference.feed(data[i : i + S])]
    assert b"".join(out) == b"".join(expected + reference.finish())


def test_a_large_buffer_the_caller_reuses_is_hashed_before_feed_returns() -> None:
    """Only chunks that cannot change are still hashed after `feed` returns."""
    data = plaintext(4 * OVERLAP_MIN, seed=3)
    buffer = bytearray(2 * OVERLAP_MIN)
    encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX))
    out: list[bytes] = []
    for at in range(0, len(data), len(buffer)):
        buffer[:] = data[at : at + len(buffer)]
        out += encryptor.feed(buffer)
    buffer[:] = bytes(len(buffer))  # the caller reuses its buffer at once
    out += encryptor.finish()
    assert encryptor.sha256_hex == hashlib.sha256(data).hexdigest()
    assert crypto.decrypt_object(b"".join(out), CTX, DEK) == data


def test_encryptor_copies_what_it_holds_back() -> None:
    data = plaintext(S + 100)
    buffer = bytearray(data[:100])
    encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX))
    out = encryptor.feed(buffer)
    buffer[:] = b"\xff" * 100  # the caller reuses its buffer
    out += encryptor.feed(memoryview(data)[100:])
    out += encryptor.finish()
    assert crypto.decrypt_object(b"".join(out), CTX, DEK) == data


def test_digest_only_after_finish() -> None:
    encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX))
    encryptor.feed(b"abc")
    with pytest.raises(RuntimeError):
        _ = encryptor.sha256_hex
    assert encryptor.finish()
    assert encryptor.sha256_hex == hashlib.sha256(b"abc").hexdigest()


def test_segment_shift_20_is_readable() -> None:
    data = plaintext(3 * (1 << 20) + 5)
    obj = crypto.encrypt_object(SegmentSealer(DEK, CTX, shift=20), data)
    assert obj[6] == 20
    assert len(obj) == crypto.object_size(len(data), 20)
    assert crypto.decrypt_object(obj, CTX, DEK) == data


# --- ranges -----------------------------------------------------------------------------

L = 3 * S + 7
RANGES = {
    "prefix": (0, 10),
    "suffix": (L - 10, L),
    "middle": (S + 5, 2 * S - 5),
    "single byte": (S + 17, S + 18),
    "first byte": (0, 1),
    "last byte": (L - 1, L),
    "segment edge": (S - 3, S + 3),
    "across two edges": (S - 1, 2 * S + 1),
    "exact segment": (S, 2 * S),
    "whole": (0, L),
    "empty": (S + 5, S + 5),
}


@pytest.fixture(scope="module")
def ranged_object() -> tuple[bytes, bytes]:
    data = plaintext(L, seed=7)
    return data, encrypt(data)


@pytest.mark.parametrize(("start", "end"), RANGES.values(), ids=RANGES.keys())
async def test_range_reads_only_covering_segments(
    ranged_object: tuple[bytes, bytes], start: int, end: int
) -> None:
    data, obj = ranged_object
    first, ct_start, ct_end = crypto.ciphertext_range(start, end, len(obj))
    if start == end:
        assert ct_start == ct_end
    else:
        last = (end - 1) // S
        assert first == start // S
        assert ct_start == segment_bounds(obj, first)[0]
        assert ct_end == segment_bounds(obj, last)[1]
    assert await read_range(obj, start, end) == data[start:end]
    # Corrupting every segment outside the covering ones changes nothing: they are not read.
    damaged = bytearray(obj)
    for index in range(crypto.segment_count(len(obj))):
        low, high = segment_bounds(obj, index)
        if not (ct_start <= low < ct_end):
            damaged[low:high] = bytes(high - low)
    assert await read_range(bytes(damaged), start, end, header=obj[:128]) == data[start:end]


async def test_range_accepts_sync_iterables(ranged_object: tuple[bytes, bytes]) -> None:
    data, obj = ranged_object
    opened = crypto.parse_header(obj, CTX, DEK)
    first, ct_start, ct_end = crypto.ciphertext_range(5, 2 * S, len(obj))
    pieces = [
        piece
        async for piece in crypto.decrypt_range(
            opened,
            [obj[ct_start:ct_end]],
            first_index=first,
            plain_start=5,
            plain_end=2 * S,
            object_size=len(obj),
        )
    ]
    assert b"".join(pieces) == data[5 : 2 * S]


def test_range_bounds_are_checked(ranged_object: tuple[bytes, bytes]) -> None:
    _, obj = ranged_object
    for start, end in [(-1, 5), (5, 4), (0, L + 1)]:
        with pytest.raises(ValueError, match="outside"):
            crypto.ciphertext_range(start, end, len(obj))


async def test_range_rejects_a_wrong_first_index(ranged_object: tuple[bytes, bytes]) -> None:
    _, obj = ranged_object
    opened = crypto.parse_header(obj, CTX, DEK)
    with pytest.raises(ValueError, match="starts in segment 1"):
        async for _ in crypto.decrypt_range(
            opened, [], first_index=0, plain_start=S, plain_end=S + 1, object_size=len(obj)
        ):
            pass
