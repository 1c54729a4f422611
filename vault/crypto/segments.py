"""CXP1 segments: header, key derivation, sealing and opening one segment, sizes.

The streaming layer on top (whole objects, upload parts, ranged reads) is `vault.crypto`,
which re-exports everything here. The format is described in docs/encryption.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import FormatError, IntegrityError, NonceReuseError

Chunk: TypeAlias = bytes | bytearray | memoryview

MAGIC: Final = b"CXP1"
FORMAT_VERSION: Final = 1
SUITE: Final = 1  # AES-256-GCM segments, HKDF-SHA-256, 96-bit STREAM nonce
DEFAULT_SHIFT: Final = 16
SUPPORTED_SHIFTS: Final = frozenset({16, 20})
HEADER_SIZE: Final = 128
TAG_SIZE: Final = 16
# A resumable upload's claim per segment: the segment's GCM tag (claims recorded by earlier
# releases: a truncated HMAC). A part's claim stays 2 KiB.
SEGMENT_TAG_SIZE: Final = 16
KEY_SIZE: Final = 32
SALT_SIZE: Final = 32
PREFIX_SIZE: Final = 7
# The segment counter is 32 bits; SP 800-38D §8.3 caps invocations per key at 2^32 as well.
MAX_SEGMENTS: Final = 1 << 32

_HEADER = struct.Struct(">4sBBBB16s16s16s32s7sB32s")
_NONCE_TAIL = struct.Struct(">IB")
_AUTHENTICATED = 96  # H96: every header byte except the commitment
_INFO_SEG = b"CXP1/seg-key\x00"
_INFO_COMMIT = b"CXP1/commit\x00"
_INFO_FINGERPRINT = b"CXP1/part-fingerprint\x00"


@dataclass(frozen=True, slots=True)
class ObjectContext:
    """The ids an object is bound to; they come from the database row, never from the object."""

    client_id: UUID
    document_id: UUID
    version_id: UUID


@dataclass(frozen=True, slots=True)
class Header:
    """A CXP1 v1 header. Version, suite, flags and reserved byte are fixed by the format."""

    client_id: UUID
    document_id: UUID
    version_id: UUID
    salt: bytes
    nonce_prefix: bytes
    key_commitment: bytes
    segment_shift: int = DEFAULT_SHIFT

    @property
    def context(self) -> ObjectContext:
        """The ids this header binds the object to."""
        return ObjectContext(self.client_id, self.document_id, self.version_id)

    @property
    def segment_size(self) -> int:
        """Plaintext bytes per segment, S = 2^segment_shift."""
        return 1 << self.segment_shift

    def pack(self) -> bytes:
        """The 128 header bytes."""
        if len(self.salt) != SALT_SIZE or len(self.nonce_prefix) != PREFIX_SIZE:
            raise ValueError("salt must be 32 bytes and nonce_prefix 7 bytes")
        if len(self.key_commitment) != KEY_SIZE:
            raise ValueError("key_commitment must be 32 bytes")
        if self.segment_shift not in SUPPORTED_SHIFTS:
            raise ValueError(f"segment_shift must be one of {sorted(SUPPORTED_SHIFTS)}")
        return _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            SUITE,
            self.segment_shift,
            0,
            self.client_id.bytes,
            self.document_id.bytes,
            self.version_id.bytes,
            self.salt,
            self.nonce_prefix,
            0,
            self.key_commitment,
        )

    @classmethod
    def unpack(cls, data: Chunk) -> Header:
        """Parse the first 128 bytes of `data`; only what v1 defines is accepted.

        Raises:
            FormatError: too short, not CXP1, or an unknown version, suite, segment size,
                flag or reserved value (rejected, never ignored: no downgrade or confusion).
        """
        if len(data) < HEADER_SIZE:
            raise FormatError(f"the header is {len(data)} bytes; CXP1 needs {HEADER_SIZE}")
        (
            magic,
            version,
            suite,
            shift,
            flags,
            client,
            document,
            version_id,
            salt,
            prefix,
            reserved,
            commitment,
        ) = _HEADER.unpack(bytes(data[:HEADER_SIZE]))
        if magic != MAGIC:
            raise FormatError("not a CXP1 object (bad magic)")
        if version != FORMAT_VERSION:
            raise FormatError(f"unsupported CXP1 format version {version}")
        if suite != SUITE:
            raise FormatError(f"unsupported CXP1 cipher suite {suite}")
        if shift not in SUPPORTED_SHIFTS:
            raise FormatError(f"unsupported CXP1 segment shift {shift}")
        if flags != 0:
            raise FormatError(f"unknown CXP1 header flags 0x{flags:02x}")
        if reserved != 0:
            raise FormatError("the CXP1 reserved header byte is not zero")
        return cls(
            UUID(bytes=client),
            UUID(bytes=document),
            UUID(bytes=version_id),
            salt,
            prefix,
            commitment,
            shift,
        )


def new_data_key() -> bytes:
    """A fresh 256-bit data key (DEK) for one object version."""
    return secrets.token_bytes(KEY_SIZE)


def _derive(dek: bytes, salt: bytes, label: bytes, h96: bytes) -> bytes:
    # RFC 5869 extract-then-expand; the label's trailing NUL keeps labels prefix-free, and
    # H96 in `info` binds every derived key to this object's ids, salt, prefix and suite.
    return HKDF(hashes.SHA256(), KEY_SIZE, salt, label + h96).derive(dek)


def _check_dek(dek: bytes) -> None:
    if len(dek) != KEY_SIZE:
        raise ValueError("a data key is 32 bytes")


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    # STREAM nonce: prefix(7) || u32be(index) || last flag(1). The index stops reordering,
    # duplication and splicing; the flag stops truncation at a segment boundary.
    return prefix + _NONCE_TAIL.pack(index, last)


class SegmentSealer:
    """Seals the segments of one object: one data key, salt and nonce prefix, one header.

    Each (key, nonce) must seal at most one plaintext. `Encryptor` and `encrypt_part` claim
    a sealer so that a second, different use of it is refused.
    """

    __slots__ = ("_aead", "_claimed", "_fingerprint_key", "_header", "_prefix", "context")

    def __init__(
        self,
        dek: bytes,
        context: ObjectContext,
        salt: bytes | None = None,
        prefix: bytes | None = None,
        *,
        shift: int = DEFAULT_SHIFT,
    ) -> None:
        _check_dek(dek)
        salt = secrets.token_bytes(SALT_SIZE) if salt is None else bytes(salt)
        prefix = secrets.token_bytes(PREFIX_SIZE) if prefix is None else bytes(prefix)
        draft = Header(
            context.client_id,
            context.document_id,
            context.version_id,
            salt,
            prefix,
            bytes(KEY_SIZE),
            shift,
        )
        h96 = draft.pack()[:_AUTHENTICATED]
        commitment = _derive(dek, salt, _INFO_COMMIT, h96)
        self.context = context
        self._header = h96 + commitment
        self._prefix = prefix
        self._aead = AESGCM(_derive(dek, salt, _INFO_SEG, h96))
        self._fingerprint_key = _derive(dek, salt, _INFO_FINGERPRINT, h96)
        self._claimed: str | None = None

    @classmethod
    def from_header(cls, dek: bytes, header: Chunk, expected: ObjectContext) -> SegmentSealer:
        """Recreate the sealer of a resumed upload from its recorded header (checked first)."""
        parsed = parse_header(header, expected, dek).header
        return cls(dek, expected, parsed.salt, parsed.nonce_prefix, shift=parsed.segment_shift)

    def __repr__(self) -> str:
        return f"SegmentSealer({self.context!r})"

    @property
    def header(self) -> bytes:
        """The 128-byte header, key commitment included."""
        return self._header

    @property
    def segment_size(self) -> int:
        """Plaintext bytes per segment."""
        return 1 << self._header[6]

    def seal(self, index: int, plaintext: Chunk, *, last: bool) -> bytes:
        """Encrypt segment `index`: exactly S bytes, or 1..S if `last` (0 only for index 0)."""
        size, segment = len(plaintext), self.segment_size
        if not 0 <= index < MAX_SEGMENTS:
            raise ValueError(f"segment index {index} is outside 0..2^32-1")
        if (size != segment) if not last else (size > segment or (size == 0 and index != 0)):
            raise ValueError(f"segment {index} has {size} bytes; segments hold {segment}")
        return self._aead.encrypt(_nonce(self._prefix, index, last), plaintext, None)

    def seal_into(self, index: int, plaintext: Chunk, out: memoryview, *, last: bool) -> int:
        """`seal`, writing the sealed segment at the start of `out` (len(plaintext) +
        TAG_SIZE bytes, returned), so a whole part is sealed into one buffer without a copy
        per segment or a join."""
        size, segment = len(plaintext), self.segment_size
        if not 0 <= index < MAX_SEGMENTS:
            raise ValueError(f"segment index {index} is outside 0..2^32-1")
        if (size != segment) if not last else (size > segment or (size == 0 and index != 0)):
            raise ValueError(f"segment {index} has {size} bytes; segments hold {segment}")
        return self._aead.encrypt_into(
            _nonce(self._prefix, index, last), plaintext, None, out[: size + TAG_SIZE]
        )

    def legacy_fingerprint(self, part_plaintext: Chunk) -> bytes:
        """The keyed fingerprint of a whole part's plaintext that releases before per-segment
        claims recorded (HMAC-SHA-256, RFC 2104, under a key derived from the DEK); kept to
        check such a claim against a resent part (docs/encryption.md, nonce-reuse guard).
        """
        return hmac.new(self._fingerprint_key, part_plaintext, hashlib.sha256).digest()

    def legacy_segment_tags(self, plaintext: Chunk) -> bytes:
        """The keyed tag per segment of `plaintext` (whole segments, the last may be short)
        that releases before GCM-tag claims recorded: `SEGMENT_TAG_SIZE` bytes of
        HMAC-SHA-256 (RFC 2104) per segment under the fingerprint key. Kept to check an
        upload's claims made before an upgrade; computed only when a claim differs from the
        segments' GCM tags (docs/encryption.md, nonce-reuse guard).
        """
        data, segment, key = (
            memoryview(plaintext).cast("B"),
            self.segment_size,
            self._fingerprint_key,
        )
        return b"".join(
            hmac.digest(key, data[i : i + segment], "sha256")[:SEGMENT_TAG_SIZE]
            for i in range(0, len(data), segment)
        )

    def claim(self, use: Literal["stream", "parts"]) -> None:
        """Reserve this sealer for one whole-object stream, or for the parts of one upload.

        Raises:
            NonceReuseError: the sealer was already used, and this use could repeat nonces.
        """
        if self._claimed is not None and (use == "stream" or self._claimed != use):
            raise NonceReuseError(
                "this sealer already encrypted data; a new object needs a new sealer"
            )
        self._claimed = use


@dataclass(frozen=True, slots=True)
class OpenedHeader:
    """A header that passed every check, with the segment key ready. Holds no raw key."""

    header: Header
    _aead: AESGCM = field(repr=False, compare=False)

    @property
    def segment_size(self) -> int:
        """Plaintext bytes per segment."""
        return self.header.segment_size

    def open_segment(self, index: int, ciphertext: Chunk, *, last: bool) -> bytes:
        """Authenticate and decrypt segment `index`.

        Raises:
            IntegrityError: the tag does not verify under this position and last flag.
        """
        try:
            return self._aead.decrypt(
                _nonce(self.header.nonce_prefix, index, last), ciphertext, None
            )
        except InvalidTag:
            raise IntegrityError(f"segment {index} failed authentication") from None

    def open_segment_into(self, index: int, ciphertext: Chunk, out: Chunk, *, last: bool) -> None:
        """`open_segment`, writing the plaintext into `out` (exactly its length); on failure
        `out` holds nothing that may be used.

        Raises:
            IntegrityError: the tag does not verify under this position and last flag.
        """
        try:
            self._aead.decrypt_into(
                _nonce(self.header.nonce_prefix, index, last), ciphertext, None, out
            )
        except InvalidTag:
            raise IntegrityError(f"segment {index} failed authentication") from None


def parse_header(data: Chunk, expected: ObjectContext, dek: bytes) -> OpenedHeader:
    """Check a header (format, ids, key commitment) and prepare to open its segments.

    Args:
        data: the header, or any prefix of the object at least 128 bytes long.
        expected: the ids of the database row the object is read for.
        dek: the unwrapped data key of that row.

    Raises:
        FormatError: malformed or unsupported header.
        IntegrityError: ids differ from the row's, or the commitment does not match (wrong
            data key or altered header).
    """
    header = Header.unpack(data)
    _check_dek(dek)
    for name in ("client_id", "document_id", "version_id"):
        found, wanted = getattr(header, name), getattr(expected, name)
        if found != wanted:
            raise IntegrityError(
                f"the object header names {name} {found}, the row expects {wanted}: "
                "the object belongs to another document version"
            )
    h96 = bytes(data[:_AUTHENTICATED])
    commitment = _derive(dek, header.salt, _INFO_COMMIT, h96)
    if not hmac.compare_digest(commitment, header.key_commitment):
        raise IntegrityError("key commitment mismatch: wrong data key or altered header")
    return OpenedHeader(header, AESGCM(_derive(dek, header.salt, _INFO_SEG, h96)))


def _layout(object_size: int, shift: int) -> tuple[int, int]:
    """(segment count, plaintext size) of an object of `object_size` bytes."""
    if shift not in SUPPORTED_SHIFTS:
        raise ValueError(f"segment shift must be one of {sorted(SUPPORTED_SHIFTS)}")
    segment = 1 << shift
    body = object_size - HEADER_SIZE
    count = -(-body // (segment + TAG_SIZE))
    size = body - TAG_SIZE * count
    last = size - (count - 1) * segment
    if body < TAG_SIZE or count > MAX_SEGMENTS or not (last >= 1 or (count == 1 and last == 0)):
        raise FormatError(f"{object_size} bytes is not a valid CXP1 object size")
    return count, size


def object_size(plaintext_size: int, shift: int = DEFAULT_SHIFT) -> int:
    """Stored size of an object holding `plaintext_size` bytes: 128 + L + 16·max(1, ⌈L/S⌉)."""
    if plaintext_size < 0 or shift not in SUPPORTED_SHIFTS:
        raise ValueError("a plaintext size is not negative; the shift must be 16 or 20")
    return HEADER_SIZE + plaintext_size + TAG_SIZE * max(1, -(-plaintext_size >> shift))


def segment_count(object_size: int, shift: int = DEFAULT_SHIFT) -> int:
    """Number of segments in an object of `object_size` bytes (FormatError if impossible)."""
    return _layout(object_size, shift)[0]


def plaintext_size(object_size: int, shift: int = DEFAULT_SHIFT) -> int:
    """Plaintext length of an object of `object_size` bytes (FormatError if impossible)."""
    return _layout(object_size, shift)[1]


def ciphertext_range(
    plain_start: int, plain_end: int, object_size: int, shift: int = DEFAULT_SHIFT
) -> tuple[int, int, int]:
    """The segments covering plaintext `[plain_start, plain_end)`.

    Returns:
        (first segment index, object offset where it starts, end offset, exclusive). An
        empty range covers no bytes.
    """
    count, size = _layout(object_size, shift)
    if not 0 <= plain_start <= plain_end <= size:
        raise ValueError(f"range [{plain_start}, {plain_end}) is outside 0..{size}")
    stride = (1 << shift) + TAG_SIZE
    first = min(plain_start >> shift, count - 1)
    start = HEADER_SIZE + first * stride
    if plain_start == plain_end:
        return first, start, start
    last = (plain_end - 1) >> shift
    end = object_size if last == count - 1 else HEADER_SIZE + (last + 1) * stride
    return first, start, end
