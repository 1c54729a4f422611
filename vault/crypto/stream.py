"""CXP1, the on-storage format of encrypted document versions.

A 128-byte header followed by AES-256-GCM segments of 64 KiB plaintext, sealed with the
STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015) under a key derived
from the version's data key and the header (RFC 5869). The header carries a key commitment.
The format, and what each check defends against, is described in docs/encryption.md.

This module streams whole objects, upload parts and ranged reads; the single-segment layer
it builds on is `vault.crypto.segments`, whose public names are re-exported here.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import anyio.to_thread

from vault.crypto.buffers import page_buffer
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
from vault.errors import IntegrityError

__all__ = [
    "DEFAULT_SHIFT",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "MAX_SEGMENTS",
    "PREFIX_SIZE",
    "SALT_SIZE",
    "SEALED_RUN",
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
    "new_data_key",
    "object_size",
    "parse_header",
    "plaintext_size",
    "seal_segments",
    "segment_count",
]


# A chunk at least this large is sealed on another thread while it is hashed: hashlib lets
# go of the GIL, so SHA-256 and AES-GCM run on two cores at once and the pipeline costs about
# what SHA-256 alone does rather than the sum of both. Smaller chunks are not worth the
# hand-over.
OVERLAP_MIN = 256 << 10
# What `seal_segments` hands its `sealed` callback at a time: small beside a part, so a part's
# plaintext can go run by run as it is sealed, large enough that the calls cost nothing.
SEALED_RUN = 1 << 20


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
    sealed: Callable[[memoryview], None] | None = None,
) -> EncryptedPart:
    """Encrypt part `part_number` (1-based): segments (p-1)·k .. p·k-1; part 1 has the header.

    Every part but the final one holds exactly k·S plaintext bytes; `k` must stay fixed for
    the upload. A part sealed again at the same segment indices reuses their nonces, so a
    resumable upload compares the returned `tags` with those it recorded for the part
    before it lets the ciphertext go (`vault.uploads.staging.claim_segments`): the same
    bytes give the same tags, other bytes other tags. `sealed`: see `seal_segments`.
    """
    segment = sealer.segment_size
    size = len(plaintext)
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
    header = sealer.header if part_number == 1 else b""
    ciphertext, tags = seal_segments(
        sealer, first, plaintext, final=final, prefix=header, sealed=sealed
    )
    return EncryptedPart(part_number, ciphertext, tags, size)


def seal_segments(
    sealer: SegmentSealer,
    first: int,
    plaintext: Chunk,
    *,
    final: bool,
    prefix: bytes = b"",
    sealed: Callable[[memoryview], None] | None = None,
) -> tuple[memoryview, bytes]:
    """Seal `plaintext` as segments `first ..` of an upload's object (the last one with the
    final flag if `final`), after `prefix`; the sealed bytes and each segment's GCM tag, which
    a resumable upload claims before the sealed bytes leave the process.

    Every segment but a final last one must be whole; the empty plaintext is one empty
    segment. `sealed`, if given, is called with each run of the plaintext (`SEALED_RUN`
    bytes of whole segments, the last run shorter), in order, as soon as the run is sealed,
    so that the caller can hash it and let it go while the rest is sealed.
    """
    sealer.claim("parts")
    segment = sealer.segment_size
    data = memoryview(plaintext).cast("B")
    count = max(1, -(-len(data) // segment))
    # One buffer, each segment sealed straight into it: no copy per segment and no join (a
    # third of the sealing time for 8 MiB parts). Its pages become resident only as they are
    # sealed into, while `sealed` lets the plaintext's go; the header and tags lead, so that
    # its huge pages fill in step with the plaintext's being let go.
    lead = len(prefix) + count * TAG_SIZE
    buffer = page_buffer(lead + len(data), lead=lead)
    buffer[: len(prefix)] = prefix
    at = len(prefix)
    tags: list[bytes] = []
    per_run = max(1, SEALED_RUN // segment)
    for j in range(count):
        chunk = data[j * segment : (j + 1) * segment]
        at += sealer.seal_into(first + j, chunk, buffer[at:], last=final and j == count - 1)
        tags.append(bytes(buffer[at - TAG_SIZE : at]))
        if sealed is not None and (j % per_run == per_run - 1 or j == count - 1):
            sealed(data[(j // per_run) * per_run * segment : (j + 1) * segment])
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


class RangeDecryptor:
    """Turns the ciphertext of `ciphertext_range(...)`, in chunks of any size, into plaintext.

    Each segment is authenticated whole before any of its bytes are returned.
    """

    def __init__(
        self, opened: OpenedHeader, *, plain_start: int, plain_end: int, object_size: int
    ) -> None:
        shift = opened.header.segment_shift
        self._opened = opened
        self._count = segment_count(object_size, shift)
        self._object_size = object_size
        self.first_index, ct_start, ct_end = ciphertext_range(
            plain_start, plain_end, object_size, shift
        )
        self._start, self._end = plain_start, plain_end
        self._index = self.first_index
        self._left = ct_end - ct_start  # ciphertext bytes still expected
        self._held: list[Chunk] = []
        self._held_size = 0

    def _unit(self) -> int:
        # Ciphertext length of the segment at self._index (only the object's last is short).
        if self._index < self._count - 1:
            return self._opened.segment_size + TAG_SIZE
        return (
            self._object_size - HEADER_SIZE - self._index * (self._opened.segment_size + TAG_SIZE)
        )

    def _open(self, ciphertext: Chunk, out: list[bytes]) -> None:
        index, segment = self._index, self._opened.segment_size
        plain = self._opened.open_segment(index, ciphertext, last=index == self._count - 1)
        base = index * segment
        low, high = max(self._start - base, 0), min(self._end - base, len(plain))
        out.append(plain if (low, high) == (0, len(plain)) else plain[low:high])
        self._index += 1

    def feed(self, chunk: Chunk) -> list[bytes]:
        """Take more ciphertext; return the plaintext of every segment now complete."""
        data = memoryview(chunk).cast("B")
        total = len(data)
        if total > self._left:
            raise IntegrityError("the store returned more ciphertext than the range covers")
        self._left -= total
        out: list[bytes] = []
        offset = 0
        if self._held:
            need = self._unit() - self._held_size
            if total < need:
                self._held.append(bytes(data))
                self._held_size += total
                return out
            self._held.append(data[:need])
            self._open(b"".join(self._held), out)
            self._held, self._held_size, offset = [], 0, need
        while offset < total:
            unit = self._unit()
            if total - offset < unit:
                self._held, self._held_size = [bytes(data[offset:])], total - offset
                break
            self._open(data[offset : offset + unit], out)
            offset += unit
        return out

    def finish(self) -> None:
        """Raises IntegrityError if the ciphertext ended before the range was covered."""
        if self._left:
            raise IntegrityError(
                f"the object ended {self._left} bytes early, in segment {self._index}"
            )


OFFLOAD_SIZE = 256 * 1024
# Under the 1 MiB from which the server's allocator maps each block afresh (web/malloc.py):
# a joined piece of 1 MiB took 257 page faults to fill and an munmap to free, a fifth of a
# download's CPU; one of 960 KiB reuses the heap's pages.
SEND_SIZE = 960 * 1024


def coalesce(pieces: list[bytes], size: int = SEND_SIZE) -> Iterator[bytes]:
    """Join consecutive pieces up to about `size` bytes each, taking them out of `pieces`
    as it goes (so each is freed once joined, not when the last is).

    A response sent in 64 KiB segments costs an ASGI send, a transport write and a
    flow-control check per segment; a copy into pieces of about a megabyte is much cheaper
    than that.
    """
    group: list[bytes] = []
    total = 0
    handed: list[bytes] = []  # what is yielded is not kept here while it is sent
    pieces.reverse()
    while pieces:
        group.append(pieces.pop())
        total += len(group[-1])
        if total >= size:
            handed.append(group[0] if len(group) == 1 else b"".join(group))
            group, total = [], 0
            yield handed.pop()
    if group:
        yield group[0] if len(group) == 1 else b"".join(group)


async def decrypt_range(
    opened: OpenedHeader,
    chunks: AsyncIterable[Chunk] | Iterable[Chunk],
    *,
    first_index: int,
    plain_start: int,
    plain_end: int,
    object_size: int,
) -> AsyncIterator[bytes]:
    """Yield exactly plaintext `[plain_start, plain_end)` from the covering ciphertext.

    Args:
        opened: from `parse_header`.
        chunks: the object's bytes `[ct_start, ct_end)` as `ciphertext_range` gave them.
        first_index: the first segment index `ciphertext_range` gave.
        plain_start: first plaintext byte wanted.
        plain_end: end of the wanted range, exclusive.
        object_size: the object's size as recorded in the database.

    Raises:
        IntegrityError: a segment failed, or the stream ended early or ran long. Bytes
            yielded before the error came from authenticated segments.
    """
    decryptor = RangeDecryptor(
        opened, plain_start=plain_start, plain_end=plain_end, object_size=object_size
    )
    if first_index != decryptor.first_index:
        raise ValueError(f"the range starts in segment {decryptor.first_index}, not {first_index}")
    if isinstance(chunks, AsyncIterable):
        iterator = aiter(chunks)
        try:
            async for chunk in iterator:
                if len(chunk) >= OFFLOAD_SIZE:
                    # AES-GCM releases the GIL: a large chunk is decrypted on another core
                    # while the event loop serves the other transfers.
                    pieces = await anyio.to_thread.run_sync(decryptor.feed, chunk)
                else:
                    pieces = decryptor.feed(chunk)
                # Its plaintext is out: the ciphertext (a whole store window) can go while
                # the plaintext is sent.
                del chunk
                for piece in coalesce(pieces):
                    yield piece
        finally:
            # Release the source (e.g. a store connection) promptly on error or early exit.
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
    else:
        for chunk in chunks:
            for piece in decryptor.feed(chunk):
                yield piece
    decryptor.finish()


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
