"""Multipart uploads of the local store (`storage.local`), kept on disk.

Unfinished uploads live under `root/.multipart/<upload_id>/`: `upload.json` records the key
and the initiation time, and each stored part has a record `<n>.part` (its etag, size and
where its bytes are). Parts that line up, as the vault's do, are written straight into
`data`, the object being assembled, at their final offsets (`layout.json` says where; an
empty file `<n>` claims part n's place); any other part goes in a file of its own,
`<n>.<etag>`. Every part is fsynced before it is acknowledged. An upload's directory is its
lock (`flock`), shared by every process.

The public functions are `LocalObjectStore`'s multipart operations; they block, and the
store runs them in a worker thread.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.errors import InvalidKeyError, ObjectNotFoundError, StorageError
from storage.local_files import (
    DIR_MODE,
    create_new,
    fsync_dir,
    fsync_file,
    key_parts,
    remove_tree,
    temp_name,
    write_durably,
)
from storage.types import MultipartUploadInfo, PartInfo, PendingUpload, StoredPart

MAX_PART_NUMBER = 10_000
_META = "upload.json"
_LAYOUT = "layout.json"
_DATA = "data"
_RECORD = ".part"
# Written into `upload.json`: an upload without it keeps its parts as earlier versions did.
_LAYOUT_VERSION = 2
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[1-9][0-9]{0,4}")  # a part's raw bytes, as earlier versions kept them
_RECORD_NAME = re.compile(r"([1-9][0-9]{0,4})\.part")
_SEPARATE_NAME = re.compile(r"[1-9][0-9]{0,4}\.[0-9a-f]{32}")
_COPY_CHUNK = 1024 * 1024
_COPY_MAX = 1 << 30


def _check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise StorageError(f"part numbers run from 1 to {MAX_PART_NUMBER}, got {part_number}")


def _normalise_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


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
        write_durably(path / _LAYOUT, json.dumps(layout).encode())
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
    with create_new(tmp) as out:
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


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


def _write_at(path: Path, offset: int, data: bytes | bytearray | memoryview) -> None:
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


def _write_new(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write the new file `path` durably (its directory entry is made durable with the
    record that names it)."""
    with create_new(path) as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as src:
        while chunk := src.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- The operations (`LocalObjectStore` delegates its multipart methods here) ------------------


def _find(uploads: Path, key: str, upload_id: str) -> _Upload:
    key_parts(key)
    # The id is checked before it becomes part of a path, so it cannot point anywhere else.
    upload = _read_upload(uploads / upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
    if upload is None or upload.key != key:
        raise ObjectNotFoundError(f"no multipart upload {upload_id!r} of {key!r}")
    return upload


def create_multipart(uploads: Path, key: str) -> str:
    """Start an upload of `key` (already checked by the store) under `uploads`; its id."""
    upload_id = secrets.token_hex(16)
    directory = uploads / upload_id
    if not uploads.is_dir():
        uploads.mkdir(mode=DIR_MODE, exist_ok=True)
        fsync_dir(uploads.parent)
    directory.mkdir(mode=DIR_MODE)
    meta = {
        "key": key,
        "initiated": datetime.now(UTC).isoformat(),
        "layout": _LAYOUT_VERSION,
    }
    # Durable like the parts to come: an upload that has acknowledged parts survives a
    # crash whole.
    write_durably(directory / _META, json.dumps(meta).encode())
    fsync_dir(uploads)
    return upload_id


def upload_part(
    uploads: Path, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
) -> str:
    _check_part_number(part_number)
    upload = _find(uploads, key, upload_id)
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
            write_durably(upload.path / f"{part_number}{_RECORD}", json.dumps(record).encode())
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


def list_parts(uploads: Path, key: str, upload_id: str) -> list[StoredPart]:
    upload = _find(uploads, key, upload_id)
    try:
        found = _read_parts(upload)
    except FileNotFoundError:
        raise ObjectNotFoundError(f"multipart upload {upload_id!r} was aborted") from None
    return [PartInfo(number, found[number].etag, found[number].size) for number in sorted(found)]


def complete_multipart(
    uploads: Path,
    key: str,
    upload_id: str,
    parts: Sequence[tuple[int, str]],
    target: Path,
    make_parents: Callable[[Path], None],
) -> None:
    """Join `parts` into the file `target`; `make_parents` makes the directories above it
    (the store's rules for those: durable, never through an object)."""
    upload = _find(uploads, key, upload_id)
    numbers = [number for number, _ in parts]
    if not numbers:
        raise StorageError("a multipart upload needs at least one part")
    if numbers != sorted(set(numbers)):
        raise StorageError("parts must be listed once each, in ascending order")
    try:
        make_parents(target)
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
        tmp = target.with_name(temp_name())
        data = upload.path / _DATA
        in_place = _assembled_in_place(upload, chosen, found)
        if in_place:
            os.rename(data, tmp)
        try:
            if not in_place:
                _join(tmp, upload.path, chosen)
            fsync_file(tmp)
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
        fsync_dir(target.parent)
        remove_tree(upload.path)


def abort_multipart(uploads: Path, key: str, upload_id: str) -> None:
    try:
        upload = _find(uploads, key, upload_id)
        with _held(upload):
            remove_tree(upload.path)
    except ObjectNotFoundError:
        return


def list_multipart_uploads(uploads: Path, prefix: str) -> list[PendingUpload]:
    pending: list[PendingUpload] = []
    try:
        entries = list(os.scandir(uploads))
    except FileNotFoundError:
        return pending
    for entry in entries:
        if not _UPLOAD_ID.fullmatch(entry.name):
            continue
        upload = _read_upload(Path(entry.path))
        if upload is not None and upload.key.startswith(prefix):
            pending.append(MultipartUploadInfo(upload.key, entry.name, upload.initiated))
    pending.sort(key=lambda u: (u.key, u.initiated))
    return pending
