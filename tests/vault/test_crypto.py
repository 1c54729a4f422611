"""CXP1: the known-answer vector, round trips, ranged reads, tampering, the part guard."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault import crypto
from vault.crypto import ObjectContext, SegmentSealer
from vault.crypto.keyring import KeyFile, Keyring
from vault.errors import FormatError, IntegrityError, NonceReuseError

S = 1 << 16
STRIDE = S + crypto.TAG_SIZE
DEK = bytes(range(0x20))
SALT = bytes(range(0x20, 0x40))
PREFIX = bytes(range(0x40, 0x47))
CTX = ObjectContext(
    uuid.UUID("00000000-0000-4000-8000-000000000001"),
    uuid.UUID("00000000-0000-4000-8000-000000000002"),
    uuid.UUID("00000000-0000-4000-8000-000000000003"),
)
OTHER = ObjectContext(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())

KAT_HEADER = bytes.fromhex(
    "4358503101011000000000000000400080000000000000010000000000004000"
    "8000000000000002000000000000400080000000000000032021222324252627"
    "28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454600"
    "26f33003070231ce5ddd087cf50dababf751f0afe0ee72ce1edaecb26f629b4f"
)
KAT_K_SEG = "72262ce85e8722b1a7e659a97a85af2f71d138eb058fa9e33d41fabe9da4b43e"
KAT_COMMIT = "26f33003070231ce5ddd087cf50dababf751f0afe0ee72ce1edaecb26f629b4f"
KAT_NONCE_0 = "404142434445460000000001"
KAT_C_0 = "e38c495f53ac0bd4cf1f7d4efa6015db16ba516a32"
KAT_OBJECT_SHA256 = "8c5304269b5f2544f06e519b8052b189210378806b2bc27425decfc35e722575"
KAT_K_FP = "47f2264526b04259e9653ce3446189886a9589d0f2bb3e67c9253bd0952cb893"
KAT_FINGERPRINT = "8e9113d92fd9d222dd4dcffa25484f2cb2d96d4cb5ed62c1f4512fcc34e999e4"


def plaintext(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, rng: random.Random, largest: int = 3 * S) -> Iterator[bytes]:
    offset = 0
    while offset < len(data):
        size = rng.choice([1, 7, S - 1, S, S + 1, rng.randint(1, largest)])
        yield data[offset : offset + size]
        offset += size


def encrypt(data: bytes, *, dek: bytes = DEK, ctx: ObjectContext = CTX, seed: int = 1) -> bytes:
    encryptor = crypto.Encryptor(SegmentSealer(dek, ctx))
    out: list[bytes] = []
    for chunk in chunks_of(data, random.Random(seed)):
        out += encryptor.feed(chunk)
    out += encryptor.finish()
    return b"".join(out)


def segment_bounds(obj: bytes, index: int) -> tuple[int, int]:
    start = crypto.HEADER_SIZE + index * STRIDE
    return start, min(start + STRIDE, len(obj))


async def read_range(
    obj: bytes,
    start: int,
    end: int,
    *,
    ctx: ObjectContext = CTX,
    dek: bytes = DEK,
    header: bytes | None = None,
    object_size: int | None = None,
    seed: int = 2,
) -> bytes:
    """What blobs.read_decrypted does: fetch only the covering ciphertext, then decrypt."""
    size = len(obj) if object_size is None else object_size
    opened = crypto.parse_header(obj[:128] if header is None else header, ctx, dek)
    first, ct_start, ct_end = crypto.ciphertext_range(start, end, size)

    async def fetch() -> AsyncIterator[bytes]:
        for chunk in chunks_of(obj[ct_start:ct_end], random.Random(seed), largest=2 * S):
            yield chunk

    pieces = [
        piece
        async for piece in crypto.decrypt_range(
            opened, fetch(), first_index=first, plain_start=start, plain_end=end, object_size=size
        )
    ]
    return b"".join(pieces)


async def collect(pieces: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for piece in pieces:
        into.append(piece)


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
    assert sealer.fingerprint(b"hello").hex() == KAT_FINGERPRINT


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


def test_resuming_a_part_with_identical_bytes_passes() -> None:
    data = plaintext(4 * S, seed=4)
    header = SegmentSealer(DEK, CTX).header
    first = crypto.encrypt_part(
        SegmentSealer.from_header(DEK, header, CTX), 2, 2, data[2 * S :], final=True
    )
    recorded = {2: first.fingerprint}
    # A new process resumes the session from its recorded header.
    again = crypto.encrypt_part(
        SegmentSealer.from_header(DEK, header, CTX),
        2,
        2,
        data[2 * S :],
        final=True,
        recorded=recorded,
    )
    assert again.ciphertext == first.ciphertext
    assert again.fingerprint == first.fingerprint


class SpyAEAD:
    def __init__(self, inner: AESGCM) -> None:
        self.inner = inner
        self.calls = 0

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        self.calls += 1
        return self.inner.encrypt(nonce, data, associated_data)


def test_resuming_a_part_with_different_bytes_is_refused_before_encryption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sealer = SegmentSealer(DEK, CTX)
    spy = SpyAEAD(AESGCM(bytes(32)))
    monkeypatch.setattr(sealer, "_aead", spy)
    original = plaintext(2 * S, seed=5)
    first = crypto.encrypt_part(sealer, 1, 2, original, final=False)
    assert spy.calls == 2
    recorded = {1: first.fingerprint}
    changed = bytearray(original)
    changed[12345] ^= 1
    result: crypto.EncryptedPart | None = None
    with pytest.raises(NonceReuseError, match="part 1 was already encrypted"):
        result = crypto.encrypt_part(sealer, 1, 2, bytes(changed), final=False, recorded=recorded)
    assert result is None
    assert spy.calls == 2
    # A part with no recorded fingerprint is not blocked by the others.
    crypto.encrypt_part(sealer, 2, 2, plaintext(10), final=True, recorded=recorded)
    assert spy.calls == 3


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


def test_fingerprint_is_keyed() -> None:
    data = plaintext(S)
    a, b = SegmentSealer(DEK, CTX), SegmentSealer(DEK, CTX)
    assert a.fingerprint(data) != b.fingerprint(data)
    assert hashlib.sha256(data).digest() not in (a.fingerprint(data), b.fingerprint(data))


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


def test_segment_tags_are_keyed_per_segment_so_any_prefix_can_be_checked() -> None:
    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    segment = sealer.segment_size
    data = random.Random(7).randbytes(3 * segment + 100)

    tags = sealer.segment_tags(data)

    size = crypto.SEGMENT_TAG_SIZE
    assert len(tags) == 4 * size
    # The tags of a prefix are a prefix of the tags: a shorter retry is checked exactly.
    assert sealer.segment_tags(data[: 2 * segment]) == tags[: 2 * size]
    assert sealer.segment_tags(data[segment : 2 * segment]) == tags[size : 2 * size]
    changed = bytearray(data)
    changed[segment + 5] ^= 1
    other = sealer.segment_tags(bytes(changed))
    assert other[:size] == tags[:size] and other[size : 2 * size] != tags[size : 2 * size]
    # Keyed by the object's fingerprint key: another data key tags the same bytes otherwise.
    assert SegmentSealer(bytes(32), CTX, SALT, PREFIX).segment_tags(data) != tags
    assert sealer.segment_tags(b"") == b""
