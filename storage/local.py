"""Objects as files under one directory: the embedded default store (`{data_dir}/objects`).

An object `a/b/c` is the file `root/a/b/c`. Unfinished multipart uploads live under
`root/.multipart/<upload_id>/`: one file per part, named by its number, and `upload.json`
recording the key and the initiation time. Files are only ever made visible by renaming a
complete, fsynced temporary file over their final name, so readers never see a partial object.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar, TypeVarTuple

import anyio.to_thread

from storage.errors import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
)
from storage.types import MultipartUploadInfo, ObjectInfo, PartInfo, PendingUpload, StoredPart

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

MiB = 1024 * 1024
MULTIPART_DIR = ".multipart"
MAX_PART_NUMBER = 10_000
_META = "upload.json"
# Every name the store makes for itself (temporary files, uploads being removed) starts with
# this; keys may not contain such a component, so `list()` can skip them without ambiguity.
_TEMP_PREFIX = ".tmp."
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[1-9][0-9]{0,4}")
_COPY_CHUNK = MiB


def _component_ok(name: str) -> bool:
    """Whether `name` may be one `/`-separated component of a key."""
    if name in ("", ".", "..") or name.startswith(_TEMP_PREFIX):
        return False
    if "/" in name or "\\" in name or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_parts(key: str) -> list[str]:
    """The path components of `key`, or `InvalidKeyError` if it could name anything but a
    file strictly inside the root (or one of the store's own files)."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("the key is empty")
    if key.startswith("/"):
        raise InvalidKeyError(f"the key {key!r} is absolute")
    parts = key.split("/")
    if not all(_component_ok(part) for part in parts):
        raise InvalidKeyError(
            f"the key {key!r} has an empty, '.', '..' or reserved ({_TEMP_PREFIX!r}...) "
            "component, a backslash, NUL or text that is not UTF-8"
        )
    if parts[0] == MULTIPART_DIR:
        raise InvalidKeyError(f"the key {key!r} is inside the reserved {MULTIPART_DIR!r} directory")
    return parts


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    if end is not None and end < start:
        raise ValueError(f"end ({end}) must not be before start ({start})")


def _check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise StorageError(f"part numbers run from 1 to {MAX_PART_NUMBER}, got {part_number}")


def _normalise_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def _temp_name() -> str:
    # Not derived from the target's name, which may already be as long as names can be.
    return f"{_TEMP_PREFIX}{secrets.token_hex(8)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write `path` by renaming a temporary sibling over it, so it is never seen half-written.

    Not fsynced: used for upload parts and records, which a crash loses along with the
    upload they belong to (nothing is visible until `complete_multipart`, which fsyncs).
    """
    tmp = path.with_name(_temp_name())
    try:
        with open(tmp, "xb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_tree(path: Path) -> None:
    """Remove `path` and everything under it; a concurrent removal is not an error."""
    trash = path.with_name(_temp_name())
    try:
        # Renaming first makes the removal atomic for everyone else: the tree is gone from
        # its name at once, even though deleting its files takes a while.
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash)


class _Upload:
    __slots__ = ("initiated", "key", "path")

    def __init__(self, path: Path, key: str, initiated: datetime) -> None:
        self.path = path
        self.key = key
        self.initiated = initiated


def _read_upload(path: Path) -> _Upload | None:
    try:
        meta = json.loads((path / _META).read_bytes())
        return _Upload(path, str(meta["key"]), datetime.fromisoformat(meta["initiated"]))
    except (FileNotFoundError, NotADirectoryError):
        return None  # not (or no longer, or not yet) an upload
    except (ValueError, KeyError, TypeError):
        return None  # written atomically, so only a hand edit damages it: treat it as absent


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as src:
        while chunk := src.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    found.sort(key=lambda e: (e[0] + "/" if e[1] else e[0]).encode("utf-8", "surrogateescape"))
    return found


class LocalObjectStore:
    """An object store on the local filesystem.

    Args:
        root: The directory holding the objects. It must exist before `check()` passes.
        read_chunk_size: The largest piece `read` yields.
    """

    def __init__(self, root: Path, *, read_chunk_size: int = MiB) -> None:
        if read_chunk_size <= 0:
            raise ValueError("read_chunk_size must be positive")
        self._root = Path(root).resolve()
        self._uploads = self._root / MULTIPART_DIR
        self._read_chunk_size = read_chunk_size

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    async def _run(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking file work in a worker thread, turning `OSError` into store errors."""
        try:
            return await anyio.to_thread.run_sync(func, *args)
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
            raise StorageUnavailableError(
                f"the object directory {self._root} failed: {exc}"
            ) from exc

    def _path(self, key: str) -> Path:
        path = self._root.joinpath(*_key_parts(key))
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
                directory.mkdir()
            except FileExistsError:
                if not directory.is_dir():
                    raise
                continue  # made by a concurrent writer
            _fsync_dir(directory.parent)

    def _upload(self, key: str, upload_id: str) -> _Upload:
        _key_parts(key)
        # The id is checked before it becomes part of a path, so it cannot point anywhere else.
        upload = (
            _read_upload(self._uploads / upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        )
        if upload is None or upload.key != key:
            raise ObjectNotFoundError(f"no multipart upload {upload_id!r} of {key!r}")
        return upload

    # Multipart writes

    def _create_multipart(self, key: str) -> str:
        self._path(key)
        upload_id = secrets.token_hex(16)
        directory = self._uploads / upload_id
        directory.mkdir(parents=True)
        meta = {"key": key, "initiated": datetime.now(UTC).isoformat()}
        _write_file(directory / _META, json.dumps(meta).encode())
        return upload_id

    async def create_multipart(self, key: str) -> str:
        """Start a multipart write of `key`.

        Returns:
            The upload id: random, so it cannot be guessed.

        Raises:
            InvalidKeyError: The key is not acceptable.
        """
        return await self._run(self._create_multipart, key)

    def _upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        _check_part_number(part_number)
        upload = self._upload(key, upload_id)
        try:
            _write_file(upload.path / str(part_number), data)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"multipart upload {upload_id!r} was aborted") from None
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Store part `part_number` (1 to 10000) of an upload; a repeated number replaces it.

        Returns:
            The part's etag (the MD5 of its bytes, in hex).

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        return await self._run(self._upload_part, key, upload_id, part_number, data)

    def _list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        upload = self._upload(key, upload_id)
        parts: list[StoredPart] = []
        try:
            for entry in os.scandir(upload.path):
                if _PART_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    path = Path(entry.path)
                    parts.append(PartInfo(int(entry.name), _md5_file(path), path.stat().st_size))
        except FileNotFoundError:
            raise ObjectNotFoundError(f"multipart upload {upload_id!r} was aborted") from None
        parts.sort(key=lambda p: p.part_number)
        return parts

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """The parts stored so far, in part-number order.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        return await self._run(self._list_parts, key, upload_id)

    def _complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        target = self._path(key)
        upload = self._upload(key, upload_id)
        numbers = [number for number, _ in parts]
        if not numbers:
            raise StorageError("a multipart upload needs at least one part")
        if numbers != sorted(set(numbers)):
            raise StorageError("parts must be listed once each, in ascending order")
        try:
            self._make_parents(target)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidKeyError(f"the key {key!r} runs through an existing object") from exc
        # Same directory as the target: the final rename must not cross filesystems.
        tmp = target.with_name(_temp_name())
        try:
            with open(tmp, "xb") as out:
                for number, etag in parts:
                    self._append_part(out, upload, number, etag)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.replace(tmp, target)
            except IsADirectoryError as exc:
                raise InvalidKeyError(f"the key {key!r} names a directory of objects") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        _remove_tree(upload.path)

    @staticmethod
    def _append_part(out: BinaryIO, upload: _Upload, number: int, etag: str) -> None:
        try:
            src = open(upload.path / str(number), "rb")  # noqa: SIM115 - closed just below
        except FileNotFoundError:
            if not (upload.path / _META).exists():
                raise ObjectNotFoundError(
                    f"multipart upload of {upload.key!r} was aborted"
                ) from None
            raise StorageError(f"part {number} was never uploaded") from None
        digest = hashlib.md5(usedforsecurity=False)
        with src:
            while chunk := src.read(_COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != _normalise_etag(etag):
            raise StorageError(f"part {number} does not match its etag (it was replaced)")

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join `(part_number, etag)` parts into the object `key`, atomically and durably.

        The parts are copied into a temporary file next to the target, which is fsynced and
        renamed over it; the directory is fsynced too. Until then the object (or its previous
        contents) is all anyone sees.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
            StorageError: A part is missing, listed out of order, or not the one `etag` names.
        """
        await self._run(self._complete_multipart, key, upload_id, parts)

    def _abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            upload = self._upload(key, upload_id)
        except ObjectNotFoundError:
            return
        _remove_tree(upload.path)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; a missing upload is not an error."""
        await self._run(self._abort_multipart, key, upload_id)

    def _list_multipart_uploads(self, prefix: str) -> list[PendingUpload]:
        uploads: list[PendingUpload] = []
        try:
            entries = list(os.scandir(self._uploads))
        except FileNotFoundError:
            return uploads
        for entry in entries:
            if not _UPLOAD_ID.fullmatch(entry.name):
                continue
            upload = _read_upload(Path(entry.path))
            if upload is not None and upload.key.startswith(prefix):
                uploads.append(MultipartUploadInfo(upload.key, entry.name, upload.initiated))
        uploads.sort(key=lambda u: (u.key, u.initiated))
        return uploads

    async def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Unfinished multipart uploads of keys starting with `prefix`."""
        return await self._run(self._list_multipart_uploads, prefix)

    # Reads and the rest

    def _open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r}") from None

    async def _read(self, key: str, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
        _check_range(start, end)
        handle = await self._run(self._open, key)
        try:
            await self._run(handle.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = (
                    self._read_chunk_size
                    if remaining is None
                    else min(self._read_chunk_size, remaining)
                )
                chunk = await self._run(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            # Closing a file opened for reading does not block, and this may run from a
            # generator finaliser where awaiting is not possible.
            handle.close()

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncGenerator[bytes, None]:
        """Stream bytes `[start, end)` of `key` (to its end when `end` is None or past it).

        Raises:
            ObjectNotFoundError: There is no such object (on the first iteration).
            ValueError: `start` is negative or `end` is before it.
        """
        return self._read(key, start, end)

    def _head(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFoundError(f"no object {key!r}")
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

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
        probe = self._root / _temp_name()
        try:
            probe.write_bytes(b"")
        finally:
            probe.unlink(missing_ok=True)

    async def check(self) -> None:
        """Raise unless the object directory exists and is writable."""
        await self._run(self._check)

    async def _walk(
        self, directory: Path, key_prefix: str, prefix: str
    ) -> AsyncGenerator[ObjectInfo, None]:
        for name, is_dir, size, mtime in await self._run(_scan, directory):
            if not _component_ok(name):
                continue
            key = key_prefix + name
            if is_dir:
                if key_prefix == "" and name == MULTIPART_DIR:
                    continue
                inner = key + "/"
                if inner.startswith(prefix) or prefix.startswith(inner):
                    async with contextlib.aclosing(
                        self._walk(directory / name, inner, prefix)
                    ) as objects:
                        async for info in objects:
                            yield info
            elif key.startswith(prefix):
                yield ObjectInfo(key, size, datetime.fromtimestamp(mtime, UTC))

    def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        """Every object whose key starts with `prefix`, in key order.

        Only directories that can hold matching keys are read; the prefix itself never
        becomes a path, so any string is safe to pass.
        """
        return self._walk(self._root, "", prefix)
