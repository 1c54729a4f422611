"""Objects as files under one directory: the embedded default store (`{data_dir}/objects`).

An object `a/b/c` is the file `root/a/b/c`. Unfinished multipart uploads live under
`root/.multipart/<upload_id>/`: `upload.json` records the key and the initiation time, and
each stored part has a record `<n>.part` (its etag, size and where its bytes are). Parts
that line up, as the vault's do, are written straight into `data`, the object being
assembled, at their final offsets (`layout.json` says where; an empty file `<n>` claims
part n's place); any other part goes in a file of its own, `<n>.<etag>`. Every part is
fsynced before it is acknowledged. Files are only ever made visible by renaming a complete,
fsynced file over their final name, so readers never see a partial object.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
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
_LAYOUT = "layout.json"
_DATA = "data"
_RECORD = ".part"
# Written into `upload.json`: an upload without it keeps its parts as earlier versions did.
_LAYOUT_VERSION = 2
# Every name the store makes for itself (temporary files, uploads being removed) starts with
# this; keys may not contain such a component, so `list()` can skip them without ambiguity.
_TEMP_PREFIX = ".tmp."
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[1-9][0-9]{0,4}")  # a part's raw bytes, as earlier versions kept them
_RECORD_NAME = re.compile(r"([1-9][0-9]{0,4})\.part")
_SEPARATE_NAME = re.compile(r"[1-9][0-9]{0,4}\.[0-9a-f]{32}")
_COPY_CHUNK = MiB
_COPY_MAX = 1 << 30


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
    __slots__ = ("initiated", "key", "legacy", "path")

    def __init__(self, path: Path, key: str, initiated: datetime, *, legacy: bool) -> None:
        self.path = path
        self.key = key
        self.initiated = initiated
        # Begun by an earlier version of this store, whose part files were named by number
        # alone: those names are then parts, never places claimed in the data file.
        self.legacy = legacy


def _read_upload(path: Path) -> _Upload | None:
    try:
        meta = json.loads((path / _META).read_bytes())
        return _Upload(
            path,
            str(meta["key"]),
            datetime.fromisoformat(meta["initiated"]),
            legacy=meta.get("layout") != _LAYOUT_VERSION,
        )
    except (FileNotFoundError, NotADirectoryError):
        return None  # not (or no longer, or not yet) an upload
    except (ValueError, KeyError, TypeError):
        return None  # written atomically, so only a hand edit damages it: treat it as absent


@contextlib.contextmanager
def _held(upload: _Upload) -> Iterator[None]:
    """Hold the upload's lock (`flock` on its directory), shared by every process.

    Raises:
        ObjectNotFoundError: The upload was completed or aborted, perhaps while waiting.
    """
    try:
        fd = os.open(upload.path, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFoundError(f"multipart upload of {upload.key!r} was aborted") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Completing and aborting rename the directory away before removing it: whoever
        # waited for the lock must not go on working on what is left of it.
        try:
            here = os.stat(upload.path)
        except FileNotFoundError:
            here = None
        mine = os.fstat(fd)
        if here is None or (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino):
            raise ObjectNotFoundError(f"multipart upload of {upload.key!r} was aborted")
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True, slots=True)
class _Part:
    """A stored part: at `offset` in the data file, or in a `file` of its own."""

    number: int
    etag: str
    size: int
    offset: int | None = None
    file: Path | None = None


def _read_parts(upload: _Upload) -> dict[int, _Part]:
    """The recorded parts of `upload`, by number."""
    path = upload.path
    parts: dict[int, _Part] = {}
    legacy: dict[int, Path] = {}
    for entry in os.scandir(path):
        if record := _RECORD_NAME.fullmatch(entry.name):
            number = int(record[1])
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
                parts[number] = _parse_record(path, number, Path(entry.path).read_bytes())
        elif (
            upload.legacy
            and _PART_FILE.fullmatch(entry.name)
            and entry.is_file(follow_symlinks=False)
        ):
            legacy[int(entry.name)] = Path(entry.path)
    # Parts written by earlier versions of this store: raw bytes named by their number,
    # their etag the MD5 of their bytes.
    for number, file in legacy.items():
        if number not in parts:
            with contextlib.suppress(FileNotFoundError):
                parts[number] = _Part(number, _md5_file(file), file.stat().st_size, file=file)
    return parts


def _read_part(upload: _Upload, number: int) -> _Part | None:
    """Part `number` of `upload`, if it has been stored (only its file, for a legacy one)."""
    path = upload.path
    try:
        return _parse_record(path, number, (path / f"{number}{_RECORD}").read_bytes())
    except FileNotFoundError:
        legacy = path / str(number)
        return _Part(number, "", 0, file=legacy) if upload.legacy and legacy.is_file() else None
    except (ValueError, KeyError, TypeError):
        return None


def _parse_record(path: Path, number: int, raw: bytes) -> _Part:
    record = json.loads(raw)
    etag, size = str(record["etag"]), int(record["size"])
    if "offset" in record:
        return _Part(number, etag, size, offset=int(record["offset"]))
    name = str(record["file"])
    # Written atomically, so only a hand edit could make the name point anywhere else.
    if not (_SEPARATE_NAME.fullmatch(name) and name.startswith(f"{number}.")):
        raise ValueError(f"part {number} names the file {name!r}")
    return _Part(number, etag, size, file=path / name)


def _read_layout(path: Path) -> tuple[int | None, int | None]:
    try:
        layout = json.loads((path / _LAYOUT).read_bytes())
    except FileNotFoundError:
        return None, None
    return layout.get("first"), layout.get("stride")


def _claim_slot(upload: _Upload, number: int, size: int) -> int | None:
    """Claim the place of part `number` in the data file: its offset, or None when it has no
    place there and goes in a file of its own. Called with the upload's lock held.

    Parts line up when part 1 has any size and every later part but the last has the size
    of the first of them to arrive (`stride`), as the vault's parts do. Each place is
    claimed once, by creating a file named by the part's number: a part sent again goes to
    a file of its own, so no byte of the data file is ever written twice, nor while a
    complete copies it.
    """
    if upload.legacy:
        return None  # its numbered files are parts, not places
    path = upload.path
    known = _read_layout(path)
    first, stride = known
    if number == 1:
        offset = 0
        first = size if first is None else first
        if first != size:
            return None
    else:
        if first is None:
            return None  # part 1 has not come yet, so nothing says where this one starts
        stride = size if stride is None else stride
        if size > stride:
            return None
        offset = first + (number - 2) * stride
    if (first, stride) != known:
        # Durable before any byte is placed by it, so a crash never leaves parts whose
        # offsets a later part would contradict.
        layout = {"first": first, "stride": stride}
        _write_durably(path / _LAYOUT, json.dumps(layout).encode())
    try:
        os.close(os.open(path / str(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return None
    return offset


def _assembled_in_place(upload: _Upload, chosen: list[_Part], found: dict[int, _Part]) -> bool:
    """Whether the data file is exactly the object: the chosen parts are every part there
    is, each written in place one after the other, and no part is still being written."""
    if len(chosen) != len(found):
        return False
    position = 0
    for part in chosen:
        if part.offset != position:
            return False
        position += part.size
    if upload.legacy:
        return False
    claimed = {int(name) for name in os.listdir(upload.path) if _PART_FILE.fullmatch(name)}
    # A claimed place with no record is a write in progress, which must not land in the
    # object once it is renamed into view.
    if not claimed <= found.keys():
        return False
    try:
        return os.stat(upload.path / _DATA).st_size == position
    except FileNotFoundError:
        return False


def _join(tmp: Path, path: Path, parts: list[_Part]) -> None:
    """Copy `parts` one after the other into the new file `tmp`, and fsync it."""
    with open(tmp, "xb") as out:
        position = 0
        for part in parts:
            source = path / _DATA if part.file is None else part.file
            try:
                src = os.open(source, os.O_RDONLY)
            except FileNotFoundError:
                raise StorageError(f"part {part.number} is missing its bytes") from None
            try:
                _copy(src, out.fileno(), part.offset or 0, part.size, position)
            finally:
                os.close(src)
            position += part.size
        os.fsync(out.fileno())


def _copy(src: int, dst: int, offset: int, count: int, position: int) -> None:
    """Copy `count` bytes at `offset` of `src` to `position` of `dst`, in the kernel."""
    while count:
        try:
            done = os.copy_file_range(src, dst, min(count, _COPY_MAX), offset, position)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            # A filesystem that cannot: through user space, a bounded piece at a time.
            piece = os.pread(src, min(count, _COPY_CHUNK), offset)
            done = len(piece)
            _pwrite_all(dst, piece, position)
        if done == 0:
            raise StorageError("a part holds fewer bytes than were recorded for it")
        offset, position, count = offset + done, position + done, count - done


def _pwrite_all(fd: int, data: bytes | memoryview, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


def _write_at(path: Path, offset: int, data: bytes) -> None:
    """Write `data` at `offset` of `path` (made if missing) and make it durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _pwrite_all(fd, data, offset)
        os.fdatasync(fd)
        # The part is on disk and not read again until the upload completes: dropping its
        # pages keeps a multi-GiB upload from filling the page cache (and pushing out what
        # readers use), and lets the next part reuse the memory they held.
        os.posix_fadvise(fd, offset, len(data), os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Write the new file `path` durably (its directory entry is made durable with the
    record that names it)."""
    with open(path, "xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _write_durably(path: Path, data: bytes) -> None:
    """Replace `path` by `data` atomically and durably: fsynced, renamed, directory fsynced."""
    tmp = path.with_name(_temp_name())
    try:
        with open(tmp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        if not self._uploads.is_dir():
            self._uploads.mkdir(exist_ok=True)
            _fsync_dir(self._root)
        directory.mkdir()
        meta = {
            "key": key,
            "initiated": datetime.now(UTC).isoformat(),
            "layout": _LAYOUT_VERSION,
        }
        # Durable like the parts to come: an upload that has acknowledged parts survives a
        # crash whole.
        _write_durably(directory / _META, json.dumps(meta).encode())
        _fsync_dir(self._uploads)
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
        etag = secrets.token_hex(16)
        with _held(upload):
            offset = _claim_slot(upload, part_number, len(data))
        if offset is None:
            record: dict[str, str | int] = {"file": f"{part_number}.{etag}"}
            written = upload.path / f"{part_number}.{etag}"
        else:
            record = {"offset": offset}
            written = None
        try:
            if written is None:
                _write_at(upload.path / _DATA, offset or 0, data)
            else:
                _write_new(written, data)
            with _held(upload):
                old = _read_part(upload, part_number)
                record.update(etag=etag, size=len(data))
                _write_durably(upload.path / f"{part_number}{_RECORD}", json.dumps(record).encode())
                # Whatever this part replaced: its own file, or the raw file of an older layout.
                if old is not None and old.file is not None:
                    old.file.unlink(missing_ok=True)
        except (FileNotFoundError, ObjectNotFoundError):
            if written is not None:
                written.unlink(missing_ok=True)
            raise ObjectNotFoundError(f"multipart upload {upload_id!r} was aborted") from None
        except BaseException:
            if written is not None:
                written.unlink(missing_ok=True)
            raise
        return etag

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
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
        return await self._run(self._upload_part, key, upload_id, part_number, data)

    def _list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        upload = self._upload(key, upload_id)
        try:
            found = _read_parts(upload)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"multipart upload {upload_id!r} was aborted") from None
        return [
            PartInfo(number, found[number].etag, found[number].size) for number in sorted(found)
        ]

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
        # Held throughout: no part is recorded, replaced or dropped while the object is made.
        with _held(upload):
            found = _read_parts(upload)
            chosen: list[_Part] = []
            for number, etag in parts:
                part = found.get(number)
                if part is None:
                    raise StorageError(f"part {number} was never uploaded")
                if not hmac.compare_digest(part.etag, _normalise_etag(etag)):
                    raise StorageError(f"part {number} does not match its etag (it was replaced)")
                chosen.append(part)
            # Same directory as the target: the final rename must not cross filesystems.
            tmp = target.with_name(_temp_name())
            data = upload.path / _DATA
            in_place = _assembled_in_place(upload, chosen, found)
            if in_place:
                os.rename(data, tmp)
            try:
                if not in_place:
                    _join(tmp, upload.path, chosen)
                _fsync_file(tmp)
                try:
                    os.replace(tmp, target)
                except IsADirectoryError as exc:
                    raise InvalidKeyError(f"the key {key!r} names a directory of objects") from exc
            except BaseException:
                if in_place:
                    # Put the parts back, so that the upload can still be completed.
                    try:
                        os.rename(tmp, data)
                    except OSError:
                        tmp.unlink(missing_ok=True)
                else:
                    tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(target.parent)
            _remove_tree(upload.path)

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

    def _abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            upload = self._upload(key, upload_id)
            with _held(upload):
                _remove_tree(upload.path)
        except ObjectNotFoundError:
            return

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
