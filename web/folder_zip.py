"""A folder and everything under it as one ZIP archive, streamed as it is built.

Each document's current version is decrypted as it streams into `stream-zip` (ZIP64 as
soon as a member or the archive needs it, UTF-8 names), and the archive streams to the
client: no temporary file and no whole member in memory, whatever the sizes.
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import anyio

if TYPE_CHECKING:
    from stream_zip import AsyncMemberFile

from vault import crypto
from vault.crypto import blobs
from vault.store import ObjectStore

FILE_MODE = stat.S_IFREG | 0o644
FOLDER_MODE = stat.S_IFDIR | 0o755
# Compressing media that is compressed already (PDF, images, Office files) costs CPU and
# saves nothing; text is worth a fast pass.
_COMPRESSIBLE = ("text/", "application/json", "application/xml", "application/x-ndjson")
CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class Member:
    """One archive member: a folder (`opened` is None) or a document's current version."""

    path: str
    modified_at: datetime
    document_id: uuid.UUID | None = None
    version_id: uuid.UUID | None = None
    number: int = 0
    size: int = 0
    content_type: str = ""
    storage_key: str = ""
    object_size: int = 0
    opened: crypto.OpenedHeader | None = None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _level(member: Member) -> int:
    return 1 if member.content_type.startswith(_COMPRESSIBLE) else 0


def _content(
    store: ObjectStore, member: Member, opened: crypto.OpenedHeader
) -> AsyncIterator[bytes]:
    pieces = blobs.read_decrypted(
        store, member.storage_key, opened=opened, object_size=member.object_size
    )
    # stream-zip is typed for bytes, but it only measures, checksums, compresses and joins
    # what it is given, which a decrypted piece (a view of a buffer of its own) allows as
    # well: copying every piece into bytes first would copy every byte of the archive.
    return cast("AsyncIterator[bytes]", pieces)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def archive(
    store: ObjectStore,
    members: Sequence[Member],
    *,
    on_complete: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The ZIP bytes of `members`, in order; `on_complete` runs once the last byte is out."""
    # stream-zip loads pycryptodome (for encrypted archives, which we never make): about
    # 4 MiB that a process needs only once it builds an archive.
    from stream_zip import ZIP_AUTO, async_stream_zip

    async def files() -> AsyncIterator[AsyncMemberFile]:
        for member in members:
            if member.opened is None:
                yield (member.path, _utc(member.modified_at), FOLDER_MODE, ZIP_AUTO(0), _nothing())
                continue
            yield (
                member.path,
                _utc(member.modified_at),
                FILE_MODE,
                ZIP_AUTO(member.size, level=_level(member)),
                _content(store, member, member.opened),
            )

    async for chunk in async_stream_zip(files(), chunk_size=CHUNK_SIZE):
        yield chunk
    if on_complete is not None:
        with anyio.CancelScope(shield=True):
            await on_complete()
