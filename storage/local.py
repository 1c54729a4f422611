"""Objects as files under one directory: the embedded default store (`{data_dir}/objects`).

An object `a/b/c` is the file `root/a/b/c`. Unfinished multipart uploads live under
`root/.multipart/` (`storage.local_multipart` keeps them). Files are only ever made visible
by renaming (or, for a create-only `put_new`, hard-linking) a complete, fsynced file to their
final name, so readers never see a partial object.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar, TypeVarTuple

import anyio.to_thread

from storage import local_multipart
from storage.budget import ByteBudget
from storage.errors import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.local_files import (
    DIR_MODE,
    MULTIPART_DIR,
    component_ok,
    create_durably,
    fsync_dir,
    key_parts,
    temp_name,
)
from storage.types import ObjectInfo, PendingUpload, StoredPart
from storage.windows import WindowBuffer, read_windows

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

MiB = 1024 * 1024


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    if end is not None and end < start:
        raise ValueError(f"end ({end}) must not be before start ({start})")


def _sort_key(key: str) -> bytes:
    # S3's order: by UTF-8 bytes.
    return key.encode("utf-8", "surrogateescape")


def _etag(found: os.stat_result) -> str:
    # Names the file a write linked into place, not its bytes: an object is never written
    # over, only deleted and written anew as another file.
    return f'"{found.st_ino:x}-{found.st_mtime_ns:x}-{found.st_size:x}"'


def _scan(directory: Path) -> list[tuple[str, bool, int, float]]:
    """`(name, is_dir, size, mtime)` of the regular files and directories in `directory`,
    in the order their keys sort (as S3 lists them: by UTF-8 bytes, `/` after a dir name)."""
    found: list[tuple[str, bool, int, float]] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                found.append((entry.name, True, 0, 0.0))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                found.append((entry.name, False, st.st_size, st.st_mtime))
        except FileNotFoundError:
            continue  # deleted while we looked
    found.sort(key=lambda e: _sort_key(e[0] + "/" if e[1] else e[0]))
    return found


def _read_window(path: Path, lo: int, hi: int, into: Callable[[], WindowBuffer | None]) -> int:
    """Read bytes `[lo, hi)` of the file at `path` into the start of the buffer `into` gives
    (None: the read was given up); returns how many, fewer where the file ends sooner.

    The file is opened for this window alone: a window still being read when its read is
    given up needs no one to close the file after it.
    """
    try:
        with open(path, "rb", buffering=0) as file:
            buffer = into()
            if buffer is None:
                return 0
            view = memoryview(buffer)[: hi - lo]
            file.seek(lo)
            filled = 0
            while filled < len(view):
                count = file.readinto(view[filled:])  # straight into the buffer, no copy
                if not count:
                    break  # the file ends here
                filled += count
            return filled
    except FileNotFoundError:  # only `open` raises it
        raise ObjectNotFoundError("the object was deleted while it was read") from None


class LocalObjectStore:
    """An object store on the local filesystem.

    Args:
        root: The directory holding the objects. It must exist before `check()` passes.
        read_chunk_size: The largest piece `read` yields.
        budget: Shared by every read of the process: each window takes its size from it
            before it is read and gives it back once the consumer comes back for more.
            Without one, the store's reads share one of 32 windows.
    """

    def __init__(
        self, root: Path, *, read_chunk_size: int = MiB, budget: ByteBudget | None = None
    ) -> None:
        if read_chunk_size <= 0:
            raise ValueError("read_chunk_size must be positive")
        self._root = Path(root).resolve()
        self._uploads = self._root / MULTIPART_DIR
        self._read_chunk_size = read_chunk_size
        # Without a budget of the process's, the store's reads share one of their own.
        self._budget = budget or ByteBudget(32 * read_chunk_size)

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    async def _run(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking file work in a worker thread, turning `OSError` into store errors."""
        with self._file_errors():
            return await anyio.to_thread.run_sync(func, *args)

    @contextlib.contextmanager
    def _file_errors(self) -> Iterator[None]:
        """Turn `OSError` into store errors."""
        try:
            yield
        except StorageError:
            raise
        except PermissionError as exc:
            raise StorageAccessDeniedError(
                f"permission denied in the object directory {self._root}: {exc}; "
                "check the permissions of the data directory"
            ) from exc
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidKeyError(f"the key is too long for the filesystem: {exc}") from exc
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(f"the object directory {self._root} is full: {exc}") from exc
            raise StorageUnavailableError(
                f"the object directory {self._root} failed: {exc}"
            ) from exc

    def _path(self, key: str) -> Path:
        path = self._root.joinpath(*key_parts(key))
        # The key is clean, but a symlink planted inside the root could still lead out of it.
        if not path.resolve().is_relative_to(self._root):
            raise InvalidKeyError(f"the key {key!r} resolves outside the object directory")
        return path

    def _make_parents(self, path: Path) -> None:
        """Create the missing directories above `path`, durably (each new entry is fsynced)."""
        missing: list[Path] = []
        parent = path.parent
        while parent != self._root and not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=DIR_MODE)
            except FileExistsError:
                if not directory.is_dir():
                    raise
                continue  # made by a concurrent writer
            fsync_dir(directory.parent)

    # Multipart writes

    def _create_multipart(self, key: str) -> str:
        self._path(key)
        return local_multipart.create_multipart(self._uploads, key)

    async def create_multipart(self, key: str) -> str:
        """Start a multipart write of `key`.

        Returns:
            The upload id: random, so it cannot be guessed.

        Raises:
            InvalidKeyError: The key is not acceptable.
        """
        return await self._run(self._create_multipart, key)

    @property
    def etags_pin_parts(self) -> bool:
        """True: a part's bytes are written once, under an etag of their own.

        Each `upload_part` call draws a new random etag and writes its bytes where no other
        call writes: the part's place in the object, claimed once by whichever call gets
        there first (`local_multipart._claim_slot`), or else a new file named by the etag.
        The part's record, with its etag, is written only after the bytes are on disk. So
        a part listed under the etag a call returned holds the bytes that call wrote, as
        they were when the write and its fsync succeeded. A part stored by an earlier
        version of this store is listed under the MD5 of the bytes it holds now, which its
        etag then was. (Changed behind the store's back, on the disk itself, is beyond any
        etag, as it is on S3: what is served is authenticated segment by segment.)"""
        return True

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
    ) -> str:
        """Store part `part_number` (1 to 10000) of an upload durably; a repeated number
        replaces it.

        The part is on disk (fsynced) when this returns, so an acknowledged part survives a
        crash. Where the parts so far line up, it is written straight into the object being
        assembled, so that completing it copies nothing.

        Returns:
            The part's etag: a random token naming this upload of the part (not a hash).

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        return await self._run(
            local_multipart.upload_part, self._uploads, key, upload_id, part_number, data
        )

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """The parts stored so far, in part-number order.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        return await self._run(local_multipart.list_parts, self._uploads, key, upload_id)

    def _complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        target = self._path(key)
        local_multipart.complete_multipart(
            self._uploads, key, upload_id, parts, target, self._make_parents
        )

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join `(part_number, etag)` parts into the object `key`, atomically and durably.

        When the parts were written in place and are exactly the ones listed, the assembled
        file is renamed into place and nothing is copied; otherwise they are copied (in the
        kernel, with `copy_file_range`) into a temporary file next to the target. Either way
        the file is fsynced and renamed over the target, and the directory is fsynced. Until
        then the object (or its previous contents) is all anyone sees.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
            StorageError: A part is missing, listed out of order, or not the one `etag` names.
        """
        await self._run(self._complete_multipart, key, upload_id, parts)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; a missing upload is not an error."""
        await self._run(local_multipart.abort_multipart, self._uploads, key, upload_id)

    async def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Unfinished multipart uploads of keys starting with `prefix`."""
        return await self._run(local_multipart.list_multipart_uploads, self._uploads, prefix)

    def _put_new(self, key: str, data: bytes) -> str | None:
        target = self._path(key)
        self._make_parents(target)
        try:
            create_durably(target, data)
        except FileExistsError:
            return None
        return _etag(target.stat())

    async def put_new(self, key: str, data: bytes) -> str | None:
        """Store the small object `key` unless the key is taken: never replaces an object.

        Returns:
            The stored object's etag (as `head` gives it); None if `key` already held an
            object, which is left as it was.
        """
        return await self._run(self._put_new, key, data)

    # Reads and the rest

    async def _read(
        self, key: str, start: int, end: int | None
    ) -> AsyncGenerator[memoryview, None]:
        _check_range(start, end)
        path, found = await self._run(self._locate, key)
        end = found.st_size if end is None else min(end, found.st_size)
        if start >= end:
            return
        budget = self._budget
        chunk = min(self._read_chunk_size, budget.capacity)
        # One window read ahead, as from S3 but with no more in flight: a disk answers at
        # once, and a second window keeps it busy while the consumer decrypts and sends.
        windows = read_windows(
            functools.partial(_read_window, path),
            start=start,
            end=end,
            chunk=chunk,
            first_window=chunk,
            read_ahead=2 * chunk,
            concurrency=1,
            budget=budget,
            threads="local-read",
        )
        try:
            handed: list[memoryview] = []
            with self._file_errors():
                async for data in windows:
                    # Handed over, not kept: while suspended at `yield` this frame holds no
                    # reference, so a window is freed as soon as its consumer drops it.
                    handed.append(data)
                    del data
                    yield handed.pop()
        finally:
            await windows.aclose()

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[memoryview, None]:
        """Stream bytes `[start, end)` of `key` (to its end when `end` is None or past it),
        each piece a view of a buffer reused once no view of it is left (`storage.windows`).
        The next piece is read while the consumer uses this one, if the budget has room.

        Raises:
            ObjectNotFoundError: There is no such object (on the first iteration).
            ValueError: `start` is negative or `end` is before it.
        """
        return self._read(key, start, end)

    def _locate(self, key: str) -> tuple[Path, os.stat_result]:
        path = self._path(key)
        try:
            found = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r}") from None
        if not stat.S_ISREG(found.st_mode):
            raise ObjectNotFoundError(f"no object {key!r}")
        return path, found

    def _head(self, key: str) -> ObjectInfo:
        _, found = self._locate(key)
        return ObjectInfo(
            key, found.st_size, datetime.fromtimestamp(found.st_mtime, UTC), _etag(found)
        )

    async def head(self, key: str) -> ObjectInfo:
        """Metadata of `key`.

        Raises:
            ObjectNotFoundError: There is no such object.
        """
        return await self._run(self._head, key)

    def _delete(self, key: str) -> None:
        # A directory holds objects but is not one: nothing to delete either.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            os.unlink(self._path(key))

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        await self._run(self._delete, key)

    def _check(self) -> None:
        if not self._root.is_dir():
            raise StorageUnavailableError(f"the object directory {self._root} does not exist")
        probe = self._root / temp_name()
        try:
            probe.write_bytes(b"")
        finally:
            probe.unlink(missing_ok=True)

    async def check(self) -> None:
        """Raise unless the object directory exists and is writable."""
        await self._run(self._check)

    async def _walk(
        self, directory: Path, key_prefix: str, prefix: str, after: bytes
    ) -> AsyncGenerator[ObjectInfo, None]:
        for name, is_dir, size, mtime in await self._run(_scan, directory):
            if not component_ok(name):
                continue
            key = key_prefix + name
            if is_dir:
                if key_prefix == "" and name == MULTIPART_DIR:
                    continue
                inner = key + "/"
                encoded = _sort_key(inner)
                if encoded < after and not after.startswith(encoded):
                    continue  # every key below sorts before `start_after`
                if inner.startswith(prefix) or prefix.startswith(inner):
                    async with contextlib.aclosing(
                        self._walk(directory / name, inner, prefix, after)
                    ) as objects:
                        async for info in objects:
                            yield info
            elif key.startswith(prefix) and _sort_key(key) > after:
                yield ObjectInfo(key, size, datetime.fromtimestamp(mtime, UTC))

    def list(self, prefix: str = "", start_after: str = "") -> AsyncGenerator[ObjectInfo, None]:
        """Every object whose key starts with `prefix`, in key order; only the keys after
        `start_after` when it is given.

        Only directories that can hold matching keys are read; the prefix itself never
        becomes a path, so any string is safe to pass.
        """
        return self._walk(self._root, "", prefix, _sort_key(start_after))
