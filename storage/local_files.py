"""Key rules and durable file primitives shared by the local store (`storage.local`) and
its multipart uploads (`storage.local_multipart`).

Files are only ever made visible by renaming (or hard-linking) a complete, fsynced file to their
final name, so readers never see a partial one.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

from storage.errors import InvalidKeyError

MULTIPART_DIR = ".multipart"
# Every name the store makes for itself (temporary files, uploads being removed) starts with
# this; keys may not contain such a component, so `list()` can skip them without ambiguity.
TEMP_PREFIX = ".tmp."


def component_ok(name: str) -> bool:
    """Whether `name` may be one `/`-separated component of a key."""
    if name in ("", ".", "..") or name.startswith(TEMP_PREFIX):
        return False
    if "/" in name or "\\" in name or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_parts(key: str) -> list[str]:
    """The path components of `key`, or `InvalidKeyError` if it could name anything but a
    file strictly inside the root (or one of the store's own files)."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("the key is empty")
    if key.startswith("/"):
        raise InvalidKeyError(f"the key {key!r} is absolute")
    parts = key.split("/")
    if not all(component_ok(part) for part in parts):
        raise InvalidKeyError(
            f"the key {key!r} has an empty, '.', '..' or reserved ({TEMP_PREFIX!r}...) "
            "component, a backslash, NUL or text that is not UTF-8"
        )
    if parts[0] == MULTIPART_DIR:
        raise InvalidKeyError(f"the key {key!r} is inside the reserved {MULTIPART_DIR!r} directory")
    return parts


def temp_name() -> str:
    # Not derived from the target's name, which may already be as long as names can be.
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove `path` and everything under it; a concurrent removal is not an error."""
    trash = path.with_name(temp_name())
    try:
        # Renaming first makes the removal atomic for everyone else: the tree is gone from
        # its name at once, even though deleting its files takes a while.
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash)


# Files and directories the store makes are the service account's alone: the bytes are
# ciphertext, but their sizes and keys still say who stored what (review item 10).
FILE_MODE = 0o600
DIR_MODE = 0o700


def create_new(path: Path) -> BinaryIO:
    """Open the new file `path` for writing, mode 0600 whatever the umask; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb")


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` by `data` atomically and durably: fsynced, renamed, directory fsynced."""
    tmp = path.with_name(temp_name())
    try:
        with create_new(tmp) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_durably(path: Path, data: bytes) -> None:
    """Write the new file `path` atomically and durably; `FileExistsError` if it exists.

    The data goes to a temporary file (fsynced) that is then hard-linked to `path`: unlike a
    rename, link(2) fails when the name is taken, so an existing file is never replaced, and
    a reader sees no file or the whole of it."""
    tmp = path.with_name(temp_name())
    try:
        with create_new(tmp) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
