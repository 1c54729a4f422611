"""CXP1, the on-storage format of encrypted document versions.

A 128-byte header followed by AES-256-GCM segments of 64 KiB plaintext, sealed with the
STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015) under a key derived
from the version's data key and the header (RFC 5869). The header carries a key commitment.
The format, and what each check defends against, is described in docs/encryption.md.

This module streams whole objects and upload parts; ranged reads are `vault.crypto.ranges`.
Both build on the single-segment layer `vault.crypto.segments`; the public names of all
three are exported here.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vault.crypto.buffers import page_buffer
from vault.crypto.ranges import RangeDecryptor, decrypt_range
from vault.crypto.segments import (
    DEFAULT_SHIFT,
    FORMAT_VERSION,
    HEADER_SIZE,
    KEY_SIZE,
    MAGIC,
    MAX_SEGMENTS,
    PREFIX_SIZE,
    SALT_SIZE,
    SEGMENT_TAG_SIZE,
    SUITE,
    SUPPORTED_SHIFTS,
    TAG_SIZE,
    Chunk,
    Header,
    ObjectContext,
    OpenedHeader,
    SegmentSealer,
    ciphertext_range,
    new_data_key,
    object_size,
    parse_header,
    plaintext_size,
    segment_count,
)

__all__ = [
    "DEFAULT_SHIFT",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "MAX_SEGMENTS",
    "PREFIX_SIZE",
    "SALT_SIZE",
    "SEGMENT_TAG_SIZE",
    "SUITE",
    "SUPPORTED_SHIFTS",
    "TAG_SIZE",
    "Chunk",
    "EncryptedPart",
    "Encryptor",
    "Header",
    "ObjectContext",
    "OpenedHeader",
    "PartEncryptor",
    "RangeDecryptor",
    "SegmentSealer",
    "ciphertext_range",
    "decrypt_object",
    "decrypt_range",
    "encrypt_object",
    "encrypt_part",
    "encrypt_part_in_place",
    "new_data_key",
    "object_size",
    "parse_header",
    "plaintext_size",
    "seal_segments",
    "sealed_part_size",
    "segment_count",
]


# A chunk at least this large is sealed on another thread while it is hashed: hashlib lets
# go of the GIL, so SHA-256 and AES-GCM run on two cores at once and the pipeline costs about
# what SHA-256 alone does rather than the sum of both. Smaller chunks are not worth the
# hand-over.
OVERLAP_MIN = 256 << 10


@functools.cache  # one pool for the process; its threads start only when first needed
def _sealing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="cxp1-seal")


class Encryptor:
    """Streams plaintext into a whole CXP1 object, hashing it with SHA-256 on the way.

    Holds at most one segment of plaintext between calls: the final segment is known only
    at `finish()`, so at least one byte is always held back until then.
    """

    def __init__(self, sealer: SegmentSealer) -> None:
        sealer.claim("stream")
        self._sealer = sealer
        self._segment = sealer.segment_size
        self._index = 0
        self._held: list[Chunk] = []
        self._held_size = 0
        self._size = 0
        self._hash = hashlib.sha256()
        self._started = False
        self._digest: str | None = None

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes fed so far (the object's plaintext size after `finish()`)."""
        return self._size

    @property
    def sha256_hex(self) -> str:
        """SHA-256 of the whole plaintext, hex; available after `finish()`."""
        if self._digest is None:
            raise RuntimeError("sha256_hex is known only after finish()")
        return self._digest

    def _begin(self) -> list[bytes]:
        if self._digest is not None:
            raise RuntimeError("the encryptor has already finished")
        if self._started:
            return []
        self._started = True
        return [self._sealer.header]

    def _seal(self, plaintext: Chunk, last: bool) -> bytes:
        sealed = self._sealer.seal(self._index, plaintext, last=last)
        self._index += 1
        return sealed

    def feed(self, chunk: Chunk) -> list[bytes]:
        """Take more plaintext; return the ciphertext now ready (the header comes first)."""
        out = self._begin()
        data = memoryview(chunk).cast("B")
        if not data:
            return out
        self._size += len(data)
        if len(data) < OVERLAP_MIN:
            self._hash.update(data)  # small enough to be still in cache when it is sealed
            self._absorb(data, out)
            return out
        # Sealed on another thread while it is hashed here: the hash is the slower of the
        # two, so the hand-over to the other thread, and back, costs nothing while it runs.
        # The caller's buffer is not touched once this returns.
        sealing = _sealing_pool().submit(self._absorb, data, out)
        try:
            self._hash.update(data)
        finally:
            sealing.result()
        return out

    def _absorb(self, data: memoryview, out: list[bytes]) -> None:
        """Seal what `data` completes, keeping at least one byte back (the final segment is
        known only at `finish()`), and hold the rest."""
        segment, total, offset = self._segment, len(data), 0
        if self._held:
            need = segment - self._held_size
            if total <= need:
                self._held.append(bytes(data))  # a copy: the caller may reuse its buffer
                self._held_size += total
                return
            self._held.append(data[:need])
            out.append(self._seal(b"".join(self._held), last=False))
            self._held, self._held_size, offset = [], 0, need
        # Whole segments straight out of the caller's chunk: slices, no copies.
        while total - offset > segment:
            out.append(self._seal(data[offset : offset + segment], last=False))
            offset += segment
        if offset < total:
            self._held, self._held_size = [bytes(data[offset:])], total - offset

    def finish(self) -> list[bytes]:
        """Seal the final segment; return the remaining ciphertext."""
        out = self._begin()
        out.append(self._seal(b"".join(self._held), last=True))
        self._held, self._held_size = [], 0
        self._digest = self._hash.hexdigest()
        return out


def encrypt_object(sealer: SegmentSealer, plaintext: Chunk) -> bytes:
    """A whole object from an in-memory plaintext."""
    encryptor = Encryptor(sealer)
    return b"".join(encryptor.feed(plaintext) + encryptor.finish())


@dataclass(frozen=True, slots=True)
class EncryptedPart:
    """One part of a resumable or multipart upload, and the tags a resumable upload claims
    for it before the ciphertext leaves the process (docs/encryption.md, nonce-reuse guard)."""

    part_number: int
    ciphertext: memoryview  # one buffer, sealed in place (see `seal_segments`)
    tags: bytes = field(repr=False)  # each segment's GCM tag, in order
    plaintext_size: int


def encrypt_part(
    sealer: SegmentSealer,
    part_number: int,
    segments_per_part: int,
    plaintext: Chunk,
    *,
    final: bool,
) -> EncryptedPart:
    """Encrypt part `part_number` (1-based): segments (p-1)·k .. p·k-1; part 1 has the header.

    Every part but the final one holds exactly k·S plaintext bytes; `k` must stay fixed for
    the upload. A part sealed again at the same segment indices reuses their nonces, so a
    resumable upload compares the returned `tags` with those it recorded for the part
    before it lets the ciphertext go (`vault.uploads.staging.claim_segments`): the same
    bytes give the same tags, other bytes other tags.
    """
    size = len(plaintext)
    first, _ = _part_segments(sealer, part_number, segments_per_part, size, final=final)
    header = sealer.header if part_number == 1 else b""
    ciphertext, tags = seal_segments(sealer, first, plaintext, final=final, prefix=header)
    return EncryptedPart(part_number, ciphertext, tags, size)


def sealed_part_size(size: int, segment_size: int, lead: int = 0) -> int:
    """The sealed bytes of a part holding `size` bytes of plaintext, after `lead` bytes of
    header: each segment, and its tag after it."""
    return lead + size + max(1, -(-size // segment_size)) * TAG_SIZE


def encrypt_part_in_place(
    sealer: SegmentSealer,
    part_number: int,
    segments_per_part: int,
    buffer: memoryview,
    size: int,
    *,
    final: bool,
    before: Callable[[memoryview], None] | None = None,
) -> EncryptedPart:
    """`encrypt_part` of `size` bytes of plaintext laid out in `buffer` as they will be sealed:
    in part 1 the header's room first, then every segment with its tag's room after it
    (segment j at `lead + j·(S + TAG_SIZE)`). Each segment's ciphertext and tag are written
    over its plaintext and that room, so the part is in memory once while it is sealed,
    not as plaintext and ciphertext side by side. `before`, if given, is called with each
    segment's plaintext, in order, just before it is sealed over (to hash it). The returned
    ciphertext is a view of `buffer`.
    """
    first, count = _part_segments(sealer, part_number, segments_per_part, size, final=final)
    header = sealer.header if part_number == 1 else b""
    segment, lead = sealer.segment_size, len(header)
    end = sealed_part_size(size, segment, lead)
    if len(buffer) < end:
        raise ValueError(f"{size} bytes seal into {end}, not {len(buffer)}")
    sealer.claim("parts")
    # AES-GCM does not write over its own input (the library refuses overlapping buffers):
    # each segment is sealed into this one and copied back, which costs no more than the
    # pages of a second buffer, each faulted in and zeroed.
    scratch = memoryview(bytearray(min(segment, size) + TAG_SIZE))
    tags: list[bytes] = []
    for j in range(count):
        at = lead + j * (segment + TAG_SIZE)
        chunk = buffer[at : at + min(segment, size - j * segment)]
        if before is not None:
            before(chunk)
        sealed = sealer.seal_into(first + j, chunk, scratch, last=final and j == count - 1)
        buffer[at : at + sealed] = scratch[:sealed]
        tags.append(bytes(scratch[sealed - TAG_SIZE : sealed]))
    buffer[:lead] = header
    return EncryptedPart(part_number, buffer[:end], b"".join(tags), size)


def _part_segments(
    sealer: SegmentSealer, part_number: int, segments_per_part: int, size: int, *, final: bool
) -> tuple[int, int]:
    """The first segment of part `part_number` and how many it has, once its size is checked."""
    segment = sealer.segment_size
    if part_number < 1 or segments_per_part < 1:
        raise ValueError("part numbers and segments_per_part start at 1")
    capacity = segments_per_part * segment
    if final and not (0 < size <= capacity or (size == 0 and part_number == 1)):
        raise ValueError(f"a final part holds 1..{capacity} bytes, not {size}")
    if not final and size != capacity:
        raise ValueError(f"a part before the final one holds {capacity} bytes, not {size}")
    first = (part_number - 1) * segments_per_part
    count = max(1, -(-size // segment))
    if first + count > MAX_SEGMENTS:
        raise ValueError("the object would exceed 2^32 segments")
    return first, count


def seal_segments(
    sealer: SegmentSealer,
    first: int,
    plaintext: Chunk,
    *,
    final: bool,
    prefix: bytes = b"",
) -> tuple[memoryview, bytes]:
    """Seal `plaintext` as segments `first ..` of an upload's object (the last one with the
    final flag if `final`), after `prefix`; the sealed bytes and each segment's GCM tag, which
    a resumable upload claims before the sealed bytes leave the process.

    Every segment but a final last one must be whole; the empty plaintext is one empty
    segment.
    """
    sealer.claim("parts")
    segment = sealer.segment_size
    data = memoryview(plaintext).cast("B")
    count = max(1, -(-len(data) // segment))
    # One buffer, each segment sealed straight into it: no copy per segment and no join (a
    # third of the sealing time for 8 MiB parts). Its pages become resident only as they are
    # sealed into.
    buffer = page_buffer(sealed_part_size(len(data), segment, len(prefix)), lead=len(prefix))
    buffer[: len(prefix)] = prefix
    at = len(prefix)
    tags: list[bytes] = []
    for j in range(count):
        chunk = data[j * segment : (j + 1) * segment]
        at += sealer.seal_into(first + j, chunk, buffer[at:], last=final and j == count - 1)
        tags.append(bytes(buffer[at - TAG_SIZE : at]))
    return buffer, b"".join(tags)


class PartEncryptor:
    """`encrypt_part` with the sealer and segments-per-part fixed for one upload session."""

    def __init__(self, sealer: SegmentSealer, segments_per_part: int) -> None:
        if segments_per_part < 1:
            raise ValueError("segments_per_part starts at 1")
        self.sealer = sealer
        self.segments_per_part = segments_per_part

    @property
    def part_size(self) -> int:
        """Plaintext bytes in every part but the final one."""
        return self.segments_per_part * self.sealer.segment_size

    def encrypt(
        self,
        part_number: int,
        plaintext: Chunk,
        *,
        final: bool,
    ) -> EncryptedPart:
        """See `encrypt_part`."""
        return encrypt_part(
            self.sealer, part_number, self.segments_per_part, plaintext, final=final
        )


def decrypt_object(data: Chunk, expected: ObjectContext, dek: bytes) -> bytes:
    """Check and decrypt a whole object held in memory; its length is its real size."""
    opened = parse_header(data, expected, dek)
    size = len(data)
    body = memoryview(data).cast("B")[HEADER_SIZE:]
    if plaintext_size(size, opened.header.segment_shift) == 0:
        return opened.open_segment(0, body, last=True)
    decryptor = RangeDecryptor(
        opened,
        plain_start=0,
        plain_end=plaintext_size(size, opened.header.segment_shift),
        object_size=size,
    )
    out = decryptor.feed(body)
    decryptor.finish()
    return b"".join(out)
