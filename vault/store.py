"""What the vault needs from an object store, declared here so `vault` never imports `storage`.

`storage.LocalObjectStore` and `storage.S3ObjectStore` satisfy these Protocols structurally.
Keys are opaque strings chosen by the vault; bytes are ciphertext only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

# S3's multipart rules, which every store keeps: parts are numbered 1 to 10,000, and an
# object holds at most 5 TiB.
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 << 40
_MiB = 1 << 20


def part_size_for(size: int, least: int) -> int:
    """The part size for an object of up to `size` bytes: `least`, or, where `MAX_PARTS`
    parts of `least` would not hold it, the smallest whole number of MiB that does.

    Whole MiB keep a part a whole number of 64 KiB segments. Only objects over 78 GiB (at
    8 MiB parts) get larger parts, and hold that much more memory while they stream.
    """
    if size <= MAX_PARTS * least:
        return least
    return -(-size // (MAX_PARTS * _MiB)) * _MiB


class StoredObject(Protocol):
    """Metadata of one stored object."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def last_modified(self) -> datetime: ...

    @property
    def etag(self) -> str:
        """Names the write that made the object (S3's ETag, quoted), as `put_new` returns it."""
        ...


class StoredPart(Protocol):
    """One part of an unfinished multipart upload."""

    @property
    def part_number(self) -> int: ...

    @property
    def etag(self) -> str: ...

    @property
    def size(self) -> int: ...


class PendingUpload(Protocol):
    """An unfinished multipart upload (for garbage collection)."""

    @property
    def key(self) -> str: ...

    @property
    def upload_id(self) -> str: ...

    @property
    def initiated(self) -> datetime: ...


class ObjectStore(Protocol):
    """An object store holding ciphertext under vault-chosen keys.

    Every method raises the store's own error type on failure (a subclass of
    `storage.StorageError`); the vault lets those propagate so the web layer can
    answer 503 and the database transaction rolls back.
    """

    @property
    def etags_pin_parts(self) -> bool:
        """Whether a part listed with the etag `upload_part` returned is known to hold the
        bytes that call sent: checked by the store as it received them, and changed only by
        a new upload under a new etag (S3: the signed SHA-256; the local store: bytes written
        once and fsynced before their etag is recorded). False where a part could change
        under the same etag, so that only reading it back proves its bytes."""
        ...

    async def create_multipart(self, key: str) -> str:
        """Start a multipart write of `key`; returns the upload id."""
        ...

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
    ) -> str:
        """Store part `part_number` (1-based) and return its etag; re-uploading replaces it.

        The store is done with `data` once this returns, or raises: the caller may write
        the next part over it."""
        ...

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """The parts stored so far, in part-number order."""
        ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join `(part_number, etag)` parts into the object `key`, atomically."""
        ...

    async def put_new(self, key: str, data: bytes) -> str | None:
        """Store the small object `key` unless the key already holds one, which is never
        replaced (a conditional PUT on S3, a hard link on a directory): the stored object's
        etag (as `head` gives it), or None if the key was taken."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; a missing upload is not an error."""
        ...

    async def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Unfinished multipart uploads under `prefix`."""
        ...

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes | memoryview]:
        """Stream bytes `[start, end)` of `key` (to the end when `end` is None)."""
        ...

    async def head(self, key: str) -> StoredObject:
        """Metadata of `key`; raises the store's not-found error when it is missing."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    def list(self, prefix: str = "", start_after: str = "") -> AsyncIterator[StoredObject]:
        """Every object whose key starts with `prefix`, in key order (UTF-8 bytes); only
        those after `start_after` when it is given."""
        ...

    async def check(self) -> None:
        """Raise unless the store is reachable and usable (readiness probe)."""
        ...
