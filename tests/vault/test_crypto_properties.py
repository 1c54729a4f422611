"""Property-based tests of CXP1: round trips, ranges and fail-closed tampering."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import crypto
from vault.crypto import ObjectContext, SegmentSealer
from vault.errors import IntegrityError

S = 1 << 16
MAX_SIZE = 300 * 1024  # a few segments, the last one partial
DEK = bytes(range(32))
CTX = ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(
    st.integers(0, MAX_SIZE),
    st.sampled_from([0, 1, S - 1, S, S + 1, 2 * S, 3 * S + 7, 4 * S]),
)


def make(size: int, seed: int) -> tuple[bytes, bytes]:
    """Plaintext (from a seed: hypothesis draws sizes, not 300 KiB of bytes) and object."""
    data = random.Random(seed).randbytes(size)
    return data, crypto.encrypt_object(SegmentSealer(DEK, CTX), data)


def cut(data: bytes, seed: int) -> list[bytes]:
    rng, out, offset = random.Random(seed), [], 0
    while offset < len(data):
        step = rng.choice([1, 16, S - 1, S + 16, rng.randint(1, 2 * S)])
        out.append(data[offset : offset + step])
        offset += step
    return out


def read(obj: bytes, start: int, end: int, chunk_seed: int, pieces_of: int = 0) -> bytes:
    """Plaintext `[start, end)` fed in random cuts; with `pieces_of`, decrypted a piece of at
    most that many bytes at a time into buffers of its own (`RangeDecryptor.pieces`)."""
    opened = crypto.parse_header(obj, CTX, DEK)
    first, ct_start, ct_end = crypto.ciphertext_range(start, end, len(obj))
    decryptor = crypto.RangeDecryptor(
        opened, plain_start=start, plain_end=end, object_size=len(obj)
    )
    assert decryptor.first_index == first
    out: list[bytes | memoryview] = []
    for chunk in cut(obj[ct_start:ct_end], chunk_seed):
        if pieces_of:
            pieces = list(decryptor.pieces([chunk], pieces_of))
            assert all(0 < len(piece) <= pieces_of for piece in pieces)
            out += pieces
        else:
            out += decryptor.feed(chunk)
    decryptor.finish()
    return b"".join(out)


@SETTINGS
@given(size=sizes, seed=st.integers(0, 2**32), chunk_seed=st.integers(0, 2**32))
def test_streamed_round_trip(size: int, seed: int, chunk_seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    encryptor = crypto.Encryptor(SegmentSealer(DEK, CTX))
    out: list[bytes] = []
    for chunk in cut(data, chunk_seed):
        out += encryptor.feed(chunk)
    out += encryptor.finish()
    obj = b"".join(out)
    assert len(obj) == crypto.object_size(size)
    assert crypto.plaintext_size(len(obj)) == size
    assert encryptor.sha256_hex == hashlib.sha256(data).hexdigest()
    assert crypto.decrypt_object(obj, CTX, DEK) == data


@SETTINGS
@given(data=st.data(), size=sizes, seed=st.integers(0, 2**32))
def test_any_range_reads_exactly_its_covering_segments(
    data: st.DataObject, size: int, seed: int
) -> None:
    plain, obj = make(size, seed)
    start = data.draw(st.integers(0, size), label="start")
    end = data.draw(st.integers(start, size), label="end")
    first, ct_start, ct_end = crypto.ciphertext_range(start, end, len(obj))
    if start < end:
        last = (end - 1) // S
        assert first == start // S
        assert ct_start == 128 + first * (S + 16)
        assert ct_end == min(128 + (last + 1) * (S + 16), len(obj))
    else:
        assert ct_start == ct_end
    pieces_of = data.draw(st.sampled_from([0, S, S + 1, 2 * S, 5 * S]), label="pieces_of")
    assert read(obj, start, end, seed, pieces_of) == plain[start:end]


@SETTINGS
@given(data=st.data(), size=sizes, seed=st.integers(0, 2**32))
def test_any_bit_flip_fails_closed(data: st.DataObject, size: int, seed: int) -> None:
    _, obj = make(size, seed)
    position = data.draw(st.integers(0, len(obj) - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(obj)
    damaged[position] ^= 1 << bit
    with pytest.raises(IntegrityError):
        crypto.decrypt_object(bytes(damaged), CTX, DEK)


@SETTINGS
@given(data=st.data(), size=sizes, seed=st.integers(0, 2**32))
def test_a_flip_inside_a_ranges_segments_fails_it_and_outside_does_not(
    data: st.DataObject, size: int, seed: int
) -> None:
    plain, obj = make(max(size, 1), seed)
    start = data.draw(st.integers(0, len(plain) - 1), label="start")
    end = data.draw(st.integers(start + 1, len(plain)), label="end")
    position = data.draw(st.integers(128, len(obj) - 1), label="position")
    damaged = bytearray(obj)
    damaged[position] ^= 0x40
    _, ct_start, ct_end = crypto.ciphertext_range(start, end, len(obj))
    pieces_of = data.draw(st.sampled_from([0, S, 2 * S]), label="pieces_of")
    if ct_start <= position < ct_end:
        with pytest.raises(IntegrityError):
            read(bytes(damaged), start, end, seed, pieces_of)
    else:
        assert read(bytes(damaged), start, end, seed, pieces_of) == plain[start:end]


@SETTINGS
@given(data=st.data(), size=sizes, seed=st.integers(0, 2**32))
def test_any_truncation_or_extension_fails_closed(
    data: st.DataObject, size: int, seed: int
) -> None:
    _, obj = make(size, seed)
    keep = data.draw(st.integers(0, len(obj) - 1), label="keep")
    with pytest.raises(IntegrityError):
        crypto.decrypt_object(obj[:keep], CTX, DEK)
    extra = data.draw(st.binary(min_size=1, max_size=S + 32), label="extra")
    with pytest.raises(IntegrityError):
        crypto.decrypt_object(obj + extra, CTX, DEK)


@SETTINGS
@given(size=sizes, seed=st.integers(0, 2**32), k=st.integers(1, 3))
def test_parts_equal_the_stream(size: int, seed: int, k: int) -> None:
    plain = random.Random(seed).randbytes(size)
    salt, prefix = random.Random(seed).randbytes(32), random.Random(seed).randbytes(7)
    parts = crypto.PartEncryptor(SegmentSealer(DEK, CTX, salt, prefix), k)
    count = max(1, -(-size // parts.part_size))
    pieces = [
        parts.encrypt(
            p, plain[(p - 1) * parts.part_size : p * parts.part_size], final=p == count
        ).ciphertext
        for p in range(1, count + 1)
    ]
    streamed = crypto.encrypt_object(SegmentSealer(DEK, CTX, salt, prefix), plain)
    assert b"".join(pieces) == streamed
