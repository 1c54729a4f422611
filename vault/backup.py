"""Backups: a database snapshot, exactly the stored objects it refers to, and a manifest.

A backup directory holds the database (a `pg_dump` archive or a SQLite copy, written by the
web layer), `store/` with one file per object (ciphertext, as stored), `objects.jsonl` with
each object's key, size and SHA-256, and `manifest.json`, written last, so a directory
without it is an unfinished backup. The objects are read from the same database snapshot
as the dump: every version the dump knows has its object in the backup, and checkpoints
are kept only up to the log size of that snapshot, so that the restored log and its
checkpoints agree. Key files are never part of a backup (docs/operations.md: Backup).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.audit.actions import AuditAction
from vault.audit.checkpoints import PREFIX as CHECKPOINT_PREFIX
from vault.errors import BackupError
from vault.models import AuditHead, AuditTreeState, Version
from vault.store import StoredObject, part_size_for

FORMAT = 1
MANIFEST = "manifest.json"
OBJECT_LIST = "objects.jsonl"
STORE_DIR = "store"
# The only keys the vault writes: `objects/<client>/<version>` and `checkpoints/<size>`.
# A restore refuses anything else, so a doctored manifest cannot write outside `store/`.
_KEY = re.compile(r"(objects/[0-9a-f-]{36}/[0-9a-f-]{36}|checkpoints/[0-9]{20})")
_BATCH = 500
_CHUNK = 1024 * 1024


class BackupStore(Protocol):
    """The part of the object store a backup uses (vault.store.ObjectStore has it all)."""

    async def create_multipart(self, key: str) -> str: ...

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str: ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None: ...

    async def abort_multipart(self, key: str, upload_id: str) -> None: ...

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes | memoryview]: ...

    async def head(self, key: str) -> StoredObject: ...

    def list(self, prefix: str = "") -> AsyncIterator[StoredObject]: ...


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds; `manifest.json` in the backup directory."""

    format: int
    created_at: str
    database: str  # "postgresql" or "sqlite"
    database_file: str
    schema_revision: str
    audit_events: int
    audit_head: str
    checkpoint: str | None  # the newest checkpoint the snapshot's tree state names
    objects: int
    bytes: int
    kek_ids: list[str]
    checkpoint_verifier_key: str
    # False: only listed; the objects are backed up by the store's own means (replication).
    objects_included: bool = True


@dataclass(frozen=True, slots=True)
class AuditState:
    events: int
    head: str
    checkpoint: str | None


@dataclass(frozen=True, slots=True)
class Copied:
    objects: int
    bytes: int


def _checked_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BackupError(f"unexpected object key in the backup: {key!r}")
    return key


def object_path(root: Path, key: str) -> Path:
    return root / STORE_DIR / _checked_key(key)


async def audit_state(session: AsyncSession) -> AuditState:
    """The log's length and head, and the newest checkpoint, as the session sees them."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    state = await session.get(AuditTreeState, 1)
    return AuditState(head.seq, head.leaf_hash, state.checkpoint_key if state else None)


async def _version_keys(session: AsyncSession) -> AsyncIterator[tuple[str, int]]:
    after = ""
    while True:
        rows = (
            await session.execute(
                select(Version.storage_key, Version.object_size)
                .where(col(Version.storage_key) > after)
                .order_by(col(Version.storage_key))
                .limit(_BATCH)
            )
        ).all()
        for key, size in rows:
            yield key, size
        if len(rows) < _BATCH:
            return
        after = rows[-1][0]


async def _checkpoint_keys(store: BackupStore, log_size: int) -> list[tuple[str, int]]:
    # A checkpoint signed after the snapshot covers events the restored log lacks, and
    # `audit verify` would rightly call that a truncation: leave those out.
    found = [(obj.key, obj.size) async for obj in store.list(CHECKPOINT_PREFIX)]
    return sorted((k, n) for k, n in found if int(k[len(CHECKPOINT_PREFIX) :]) <= log_size)


async def _copy_out(store: BackupStore, key: str, target: Path) -> tuple[int, str]:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest, size = hashlib.sha256(), 0
    async with await anyio.open_file(partial, "wb") as out:
        async for chunk in store.read(key):
            digest.update(chunk)
            size += len(chunk)
            await out.write(chunk)
        await out.flush()
        await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
    os.chmod(partial, 0o600)
    partial.replace(target)
    return size, digest.hexdigest()


async def copy_objects(
    session: AsyncSession,
    store: BackupStore,
    root: Path,
    *,
    log_size: int,
    include: bool = True,
    on_progress: Callable[[Copied], None] = lambda copied: None,
) -> Copied:
    """Copy every object the session's versions refer to, and the checkpoints up to
    `log_size`, into `root/store/`, listing each in `root/objects.jsonl`. With `include`
    false, only check that each is in the store with its size and list it (no SHA-256).

    Raises:
        BackupError: an object's size differs from the one recorded (run `fsck`).
    """
    count = total = 0

    async def keys() -> AsyncIterator[tuple[str, int]]:
        async for key, size in _version_keys(session):
            yield key, size
        for key, size in await _checkpoint_keys(store, log_size):
            yield key, size

    listing = root / OBJECT_LIST
    async with await anyio.open_file(listing, "w", encoding="utf-8") as lines:
        os.chmod(listing, 0o600)
        async for key, expected in keys():
            if include:
                size, sha256 = await _copy_out(store, key, object_path(root, key))
            else:
                size, sha256 = (await store.head(key)).size, None
            if size != expected:
                raise BackupError(
                    f"object {key} holds {size} bytes, the database expects {expected}: "
                    "run `clientvault fsck`"
                )
            await lines.write(json.dumps({"key": key, "size": size, "sha256": sha256}) + "\n")
            count, total = count + 1, total + size
            on_progress(Copied(count, total))
    return Copied(count, total)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write `manifest.json` last and atomically: its presence marks a complete backup."""
    partial = root / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    os.chmod(partial, 0o600)
    partial.replace(root / MANIFEST)


def read_manifest(root: Path) -> Manifest:
    """The backup's manifest; `BackupError` when it is missing, unfinished or foreign."""
    try:
        data: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{root} holds no {MANIFEST}: not a complete backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read {root / MANIFEST}: {exc}") from None
    if data.get("format") != FORMAT:
        raise BackupError(f"backup format {data.get('format')!r} is not {FORMAT}")
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise BackupError(f"malformed {MANIFEST}: {exc}") from None


def listed_objects(root: Path) -> Iterator[tuple[str, int, str | None]]:
    """(key, size, sha256) of every object in the backup, in the order they were copied."""
    with (root / OBJECT_LIST).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                sha256 = item["sha256"]
                yield _checked_key(item["key"]), int(item["size"]), sha256 and str(sha256)
            except (ValueError, KeyError, TypeError):
                raise BackupError(f"{OBJECT_LIST} line {number} is malformed") from None


async def _put(store: BackupStore, key: str, source: Path, sha256: str, part: int) -> int:
    digest, size = hashlib.sha256(), 0
    parts: list[tuple[int, str]] = []
    upload_id = await store.create_multipart(key)
    try:
        async with await anyio.open_file(source, "rb") as data:
            while chunk := await data.read(part):
                digest.update(chunk)
                size += len(chunk)
                number = len(parts) + 1
                parts.append((number, await store.upload_part(key, upload_id, number, chunk)))
        # Checked before the object becomes visible: a damaged backup file never lands.
        if digest.hexdigest() != sha256:
            raise BackupError(f"{source} does not match its SHA-256 in the manifest")
        await store.complete_multipart(key, upload_id, parts)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.abort_multipart(key, upload_id)
        raise
    return size


async def restore_objects(
    store: BackupStore,
    root: Path,
    *,
    part_size: int,
    on_progress: Callable[[Copied], None] = lambda copied: None,
) -> Copied:
    """Write every object of the backup into `store`, each checked against its SHA-256
    before it becomes visible. Objects already there with the right size are skipped, so
    an interrupted restore can be run again."""
    present = {obj.key: obj.size async for obj in store.list("")}
    count = total = 0
    for key, size, sha256 in listed_objects(root):
        if present.get(key) != size:
            source = object_path(root, key)
            if sha256 is None or not source.is_file():
                raise BackupError(
                    f"object {key} is neither in the store nor in the backup: restore the "
                    "bucket first (the backup was taken with --no-objects)"
                    if sha256 is None
                    else f"the backup lacks the object {key}"
                )
            await _put(store, key, source, sha256, part_size_for(size, part_size))
        count, total = count + 1, total + size
        on_progress(Copied(count, total))
    return Copied(count, total)


async def check_restored(store: BackupStore, root: Path) -> None:
    """Raise unless every object of the backup is in `store` with its size."""
    present = {obj.key: obj.size async for obj in store.list("")}
    for key, size, _ in listed_objects(root):
        if present.get(key) != size:
            raise BackupError(f"object {key} is not in the store after the restore")


async def record(
    session: AsyncSession, context: audit.AuditContext, action: AuditAction, manifest: Manifest
) -> None:
    """Audit `backup.created` or `backup.restored`."""
    await audit.record(
        session,
        context,
        action,
        details={
            "created_at": manifest.created_at,
            "audit_events": manifest.audit_events,
            "audit_head": manifest.audit_head,
            "objects": manifest.objects,
            "bytes": manifest.bytes,
        },
    )


def now() -> str:
    return audit.timestamp(datetime.now(UTC))
