"""CXP1 fails closed: tampered, swapped, truncated or mis-keyed objects and headers are refused."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.crypto_objects import (
    CTX,
    DEK,
    KAT_HEADER,
    S,
    encrypt,
    plaintext,
    read_range,
    segment_bounds,
)
from vault import crypto
from vault.crypto import ObjectContext, SegmentSealer
from vault.crypto.keyring import KeyFile, Keyring
from vault.errors import FormatError, IntegrityError

OTHER = ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())


async def collect(pieces: AsyncIterator[bytes | memoryview], into: list[bytes]) -> None:
    async for piece in pieces:
        into.append(bytes(piece))


# --- tampering fails closed ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes]:
    data = plaintext(3 * S + 7, seed=3)
    return data, encrypt(data)


def swap(obj: bytes, i: int, j: int) -> bytes:
    (a, b), (c, d) = segment_bounds(obj, i), segment_bounds(obj, j)
    assert b - a == d - c
    return obj[:a] + obj[c:d] + obj[b:c] + obj[a:b] + obj[d:]


def tampered(obj: bytes) -> dict[str, bytes]:
    n = crypto.segment_count(len(obj))
    last_start, _ = segment_bounds(obj, n - 1)
    s0, e0 = segment_bounds(obj, 0)
    s1, e1 = segment_bounds(obj, 1)
    return {
        "drop final segment": obj[:last_start],
        "drop a middle segment": obj[:s1] + obj[e1:],
        "truncate mid-segment": obj[: s1 + 1000],
        "truncate inside the last tag": obj[:-5],
        "swap two segments": swap(obj, 0, 1),
        "duplicate a segment in place": obj[:s1] + obj[s0:e0] + obj[e1:],
        "duplicate a segment, inserted": obj[:s1] + obj[s0:e0] + obj[s1:],
        "extra trailing byte": obj + b"\x00",
        "extra trailing tag-sized bytes": obj + bytes(16),
        "extra trailing segment copy": obj + obj[s0:e0],
    }


TAMPER_CASES = [
    "drop final segment",
    "drop a middle segment",
    "truncate mid-segment",
    "truncate inside the last tag",
    "swap two segments",
    "duplicate a segment in place",
    "duplicate a segment, inserted",
    "extra trailing byte",
    "extra trailing tag-sized bytes",
    "extra trailing segment copy",
]


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_structural_tampering_fails(sample: tuple[bytes, bytes], case: str) -> None:
    _, obj = sample
    cases = tampered(obj)
    assert sorted(cases) == sorted(TAMPER_CASES)
    with pytest.raises(IntegrityError):
        crypto.decrypt_object(cases[case], CTX, DEK)


@pytest.mark.parametrize(
    "offset",
    [8, 30, 50, 60, 90, 100, 127, 128, 128 + 5000, 128 + S - 1, 128 + S + 3, -16, -1],
    ids=lambda o: f"byte {o}",
)
def test_bit_flips_fail(sample: tuple[bytes, bytes], offset: int) -> None:
    _, obj = sample
    damaged = bytearray(obj)
    damaged[offset] ^= 0x01
    with pytest.raises(IntegrityError):
        crypto.decrypt_object(bytes(damaged), CTX, DEK)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, ord("X"), "bad magic"),
        (4, 2, "format version 2"),
        (5, 2, "cipher suite 2"),
        (6, 17, "segment shift 17"),
        (6, 12, "segment shift 12"),
        (7, 1, "flags 0x01"),
        (95, 1, "reserved"),
    ],
)
def test_unknown_header_values_are_format_errors(
    sample: tuple[bytes, bytes], offset: int, value: int, message: str
) -> None:
    _, obj = sample
    damaged = bytearray(obj)
    damaged[offset] = value
    with pytest.raises(FormatError, match=message):
        crypto.parse_header(bytes(damaged), CTX, DEK)
    with pytest.raises(FormatError):
        crypto.decrypt_object(bytes(damaged), CTX, DEK)


def test_short_header_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="needs 128"):
        crypto.parse_header(KAT_HEADER[:100], CTX, DEK)


@pytest.mark.parametrize("field", ["client_id", "document_id", "version_id"])
def test_header_ids_must_match_the_row(sample: tuple[bytes, bytes], field: str) -> None:
    _, obj = sample
    expected = dataclasses.replace(CTX, **{field: uuid.uuid4()})
    with pytest.raises(IntegrityError, match=field):
        crypto.parse_header(obj, expected, DEK)


def test_wrong_data_key_fails_the_commitment(sample: tuple[bytes, bytes]) -> None:
    _, obj = sample
    wrong = bytes(32)
    with pytest.raises(IntegrityError, match="key commitment") as raised:
        crypto.decrypt_object(obj, CTX, wrong)
    assert DEK.hex() not in str(raised.value)
    assert wrong.hex() not in str(raised.value)


async def test_swapping_objects_between_rows_fails() -> None:
    dek_a, dek_b = crypto.new_data_key(), crypto.new_data_key()
    obj_a = encrypt(plaintext(2 * S + 1, 1), dek=dek_a, ctx=CTX)
    obj_b = encrypt(plaintext(2 * S + 1, 2), dek=dek_b, ctx=OTHER)
    # Served whole: the header names the other row's ids.
    with pytest.raises(IntegrityError, match="belongs to another"):
        crypto.decrypt_object(obj_a, OTHER, dek_b)
    # Served by range with row B's own header copy: A's segments do not open under B's key.
    with pytest.raises(IntegrityError, match="segment 0 failed"):
        await read_range(obj_a, 0, 10, ctx=OTHER, dek=dek_b, header=obj_b[:128])
    # Even with the same data key, segments are bound to their own object.
    obj_c = encrypt(plaintext(2 * S + 1, 3), dek=dek_a, ctx=OTHER)
    with pytest.raises(IntegrityError, match="segment 1 failed"):
        await read_range(obj_a, S, S + 10, ctx=OTHER, dek=dek_a, header=obj_c[:128])


def test_swapping_wrapped_keys_between_rows_fails_the_commitment(tmp_path: Path) -> None:
    keyring = Keyring(KeyFile.create(tmp_path / "keys.json"))
    dek_a, dek_b = crypto.new_data_key(), crypto.new_data_key()
    row_a, row_b = keyring.wrap(dek_a), keyring.wrap(dek_b)
    obj_b = encrypt(b"row b", dek=dek_b, ctx=OTHER)
    assert crypto.decrypt_object(obj_b, OTHER, keyring.unwrap(*row_b)) == b"row b"
    with pytest.raises(IntegrityError, match="key commitment"):
        crypto.parse_header(obj_b, OTHER, keyring.unwrap(*row_a))


async def test_range_stream_ending_early_or_running_long_fails(
    sample: tuple[bytes, bytes],
) -> None:
    data, obj = sample
    opened = crypto.parse_header(obj, CTX, DEK)
    first, ct_start, ct_end = crypto.ciphertext_range(0, len(data), len(obj))
    got: list[bytes] = []
    short = crypto.decrypt_range(
        opened,
        [obj[ct_start : ct_end - 7]],
        first_index=first,
        plain_start=0,
        plain_end=len(data),
        object_size=len(obj),
    )
    with pytest.raises(IntegrityError, match="ended 7 bytes early"):
        await collect(short, got)
    assert b"".join(got) == data[: 3 * S]  # everything released was authenticated
    with pytest.raises(IntegrityError, match="more ciphertext"):
        async for _ in crypto.decrypt_range(
            opened,
            [obj[ct_start:ct_end], b"x"],
            first_index=first,
            plain_start=0,
            plain_end=len(data),
            object_size=len(obj),
        ):
            pass


async def test_range_stops_at_a_damaged_segment_and_closes_the_source(
    sample: tuple[bytes, bytes],
) -> None:
    data, obj = sample
    damaged = bytearray(obj)
    damaged[segment_bounds(obj, 1)[0] + 10] ^= 0x80
    opened = crypto.parse_header(obj, CTX, DEK)
    closed = False

    async def source() -> AsyncIterator[bytes]:
        nonlocal closed
        try:
            for index in range(4):
                low, high = segment_bounds(obj, index)
                yield bytes(damaged[low:high])
        finally:
            closed = True

    got: list[bytes] = []
    reader = crypto.decrypt_range(
        opened, source(), first_index=0, plain_start=0, plain_end=len(data), object_size=len(obj)
    )
    with pytest.raises(IntegrityError, match="segment 1 failed"):
        await collect(reader, got)
    assert got == [data[:S]]
    assert closed


def test_reprs_hold_no_key_material(sample: tuple[bytes, bytes]) -> None:
    _, obj = sample
    sealer = SegmentSealer(DEK, CTX)
    opened = crypto.parse_header(obj, CTX, DEK)
    for text in (repr(sealer), repr(opened)):
        assert DEK.hex() not in text
        assert "AESGCM" not in text
