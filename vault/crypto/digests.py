"""SHA-256 of resumable uploads as their parts arrive, kept by the process that sees them.

A hash object cannot travel between processes, so this is a cache, never the upload's
state: when the process that finishes an upload saw every one of its parts, in order, from
the first, the digest is ready at once; otherwise the finisher hashes the plaintext while
it reads the object back (`vault.uploads`). Either way the digest covers exactly the
stored plaintext, because a part number's bytes are fixed by its recorded fingerprint
from its first claim on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio
import anyio.to_thread

from vault.crypto.segments import Chunk

__all__ = ["RunningDigests"]


@dataclass(slots=True)
class _Running:
    next_part: int = 1
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    lock: anyio.Lock = field(default_factory=anyio.Lock)


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

    async def extend(self, upload_id: uuid.UUID, number: int, plaintext: Chunk) -> None:
        """Hash part `number` if it is the next one of the upload; otherwise do nothing.

        Call it only once the part's fingerprint is recorded (claimed), so that `plaintext`
        is the only content part `number` can ever have.
        """
        running = self._uploads.get(upload_id)
        if running is None:
            if number != 1:
                return
            running = self._uploads[upload_id] = _Running()
            while len(self._uploads) > self._limit:
                self._uploads.popitem(last=False)
        self._uploads.move_to_end(upload_id)
        # Two requests of one upload in this process may race: the lock keeps the parts in
        # order, and the part number check hashes each once.
        async with running.lock:
            if running.next_part != number:
                return
            await anyio.to_thread.run_sync(running.sha256.update, plaintext)
            running.next_part = number + 1

    def take(self, upload_id: uuid.UUID, parts: int) -> str | None:
        """The hex SHA-256 of the upload if all its `parts` were hashed here, and forget it."""
        running = self._uploads.pop(upload_id, None)
        if running is None or running.next_part != parts + 1 or running.lock.locked():
            return None
        return running.sha256.hexdigest()

    def forget(self, upload_id: uuid.UUID) -> None:
        """Drop the upload (terminated, or finished elsewhere)."""
        self._uploads.pop(upload_id, None)
