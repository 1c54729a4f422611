"""SHA-256 of resumable uploads as their parts arrive, kept by the process that sees them.

A hash object cannot travel between processes, so this is a cache, never the upload's
state: when the process that finishes an upload saw every one of its parts, in order, from
the first, the digest is ready at once; otherwise the finisher hashes the plaintext while
it reads the object back (`vault.uploads`). Either way the digest covers exactly the
stored plaintext, because a part number's bytes are fixed by its segments' tags from their
first claim on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from vault.crypto.segments import Chunk

__all__ = ["PartHash", "RunningDigests"]


@dataclass(slots=True)
class _Running:
    next_part: int = 1
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)


@dataclass(slots=True)
class PartHash:
    """Part `number` of an upload, hashed onto a copy of the upload's running SHA-256 (so
    it can be hashed as the part is sealed, before it is claimed); it counts once
    `RunningDigests.commit` takes it."""

    upload_id: uuid.UUID
    number: int
    sha256: hashlib._Hash

    def update(self, plaintext: Chunk) -> None:
        """Hash `plaintext` next (hashlib lets go of the GIL: worth a worker thread for a
        large one)."""
        self.sha256.update(plaintext)


class RunningDigests:
    """The running SHA-256 of the uploads whose parts this process has seen from part 1.

    Args:
        limit: How many uploads to follow at once; the least recently extended is dropped
            beyond it (its finisher then hashes by reading back).
    """

    def __init__(self, limit: int = 1024) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self._limit = limit
        self._uploads: OrderedDict[uuid.UUID, _Running] = OrderedDict()

    def __len__(self) -> int:
        return len(self._uploads)

    def start(self, upload_id: uuid.UUID, number: int) -> PartHash | None:
        """A copy of the upload's running SHA-256 to hash part `number` onto, if it is the
        next part; None if this process missed a part before it or has hashed it already."""
        running = self._uploads.get(upload_id)
        if running is None:
            if number != 1:
                return None
            running = self._uploads[upload_id] = _Running()
            while len(self._uploads) > self._limit:
                self._uploads.popitem(last=False)
        self._uploads.move_to_end(upload_id)
        if running.next_part != number:
            return None
        return PartHash(upload_id, number, running.sha256.copy())

    def commit(self, part: PartHash) -> None:
        """Make `part`'s hash the upload's running SHA-256.

        Call it only once the part's segments are claimed, so that the bytes hashed are
        the only content part `number` can ever have. Two requests of one upload in this
        process may race with the same part: the first to commit it wins, and the other's
        copy, of the same bytes, is dropped.
        """
        running = self._uploads.get(part.upload_id)
        if running is None or running.next_part != part.number:
            return
        running.sha256 = part.sha256
        running.next_part = part.number + 1

    def take(self, upload_id: uuid.UUID, parts: int) -> str | None:
        """The hex SHA-256 of the upload if all its `parts` were hashed here, and forget it."""
        running = self._uploads.pop(upload_id, None)
        if running is None or running.next_part != parts + 1:
            return None
        return running.sha256.hexdigest()

    def forget(self, upload_id: uuid.UUID) -> None:
        """Drop the upload (terminated, or finished elsewhere)."""
        self._uploads.pop(upload_id, None)
