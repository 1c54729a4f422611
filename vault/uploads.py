"""Resumable uploads (the tus protocol's domain side): an upload session that lives only in
the database and the object store, so any app process can continue or finish it.

An upload is one future document version. Its plan (ids, wrapped data key, object header,
multipart upload id) is fixed and stored when the upload is created; every part is then
encrypted on its own with `crypto.encrypt_part` under that one header.

Parts are the unit of progress. The plaintext of part `p` is bytes
`[(p-1)·part_size, p·part_size)`; only whole parts are ever stored, so the offset an upload
reports is always a part boundary. The final part (the one that reaches the upload's length)
is stored only when a request delivered all of it, and the offset jumps to the length only
once the version is committed: until then a client resends the final part, which is
harmless (see below), and never sees an upload that is "complete" without its document.

Nonce safety: each part's keyed fingerprint (`SegmentSealer.fingerprint`) is committed to
`upload_parts` *before* the part is encrypted. A part offered again with the same bytes
re-encrypts to the same ciphertext; with different bytes it is refused (`NonceReuseError`)
without any AES-GCM call, because its segment nonces are fixed by the part number. The row
lock on the upload serialises these claims across processes, and the fingerprints stay
until the upload row goes, so even a late copy of the final request is checked.

SHA-256: a hash object cannot travel between processes, so each process keeps the running
digest of the uploads it has seen from part 1 on (`vault.digests`, a cache); `finish` uses
it when this process saw every part, and otherwise hashes the plaintext while it reads the
assembled object back. That read happens either way, so every segment is authenticated
before the version becomes visible.

Throughput: `append` is a pipeline (claim, seal, store, record), one part per stage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Text, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select

from vault import audit, blobs, crypto
from vault import documents as doc_service
from vault.db import transaction
from vault.digests import RunningDigests
from vault.errors import (
    ConflictError,
    IntegrityError,
    NonceReuseError,
    NotFoundError,
    TooLargeError,
    VaultError,
)
from vault.keyring import Keyring
from vault.models import utcnow
from vault.policy import Permission, Principal, can_see_client, require
from vault.store import ObjectStore

logger = logging.getLogger(__name__)

# S3 numbers parts 1..10,000, so an upload holds at most this many parts.
MAX_PARTS = 10_000
# A finisher holds the upload for this long and renews the hold while it works; a process
# that dies mid-finish lets another take over once the hold lapses.
FINISH_LEASE = timedelta(seconds=60)
_RENEW_EVERY = 15.0
_WAIT_POLL = 0.25
# Parts of one request being written to the store at once.
_STORE_CONCURRENCY = 2
# Ciphertext decrypted per worker-thread call when the finisher reads the object back.
_READ_BACK_BATCH = 8 << 20
MAX_METADATA = 4096


class UploadState(StrEnum):
    OPEN = "open"  # parts are arriving
    FINISHING = "finishing"  # one process assembles, hashes and commits the version
    COMPLETE = "complete"  # the version is committed; the row answers HEAD until it expires


class Upload(SQLModel, table=True):
    """One resumable upload: its plan, its progress, and who may continue it."""

    __tablename__ = "uploads"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    client_id: uuid.UUID = Field(foreign_key="clients.id", index=True)
    folder_id: uuid.UUID = Field(foreign_key="folders.id")
    # The planned document and version: the object header binds them from the first part on.
    document_id: uuid.UUID
    version_id: uuid.UUID
    name: str = Field(sa_column=Column(String(255), nullable=False))
    is_new: bool
    storage_key: str = Field(sa_column=Column(String(512), nullable=False, unique=True))
    multipart_id: str = Field(sa_column=Column(String(1024), nullable=False))
    kek_id: str = Field(max_length=64)
    wrapped_dek: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    upload_length: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Fixed per upload: it decides which segments each part number covers (nonce safety).
    part_size: int = Field(sa_column=Column(Integer, nullable=False))
    # Plaintext bytes in contiguous stored parts, the final part never counted.
    stored_offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    tus_metadata: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    content_type: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    state: UploadState = Field(sa_column=Column(String(16), nullable=False))
    claim: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    lease_until: datetime | None = None
    version_number: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class UploadPart(SQLModel, table=True):
    """A part claimed by its plaintext fingerprint; `etag` is set once the store has it."""

    __tablename__ = "upload_parts"
    upload_id: uuid.UUID = Field(foreign_key="uploads.id", primary_key=True)
    number: int = Field(primary_key=True)
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    etag: str | None = Field(default=None, sa_column=Column(String(256), nullable=True))


@dataclass(frozen=True, slots=True)
class Finished:
    """The version an upload became."""

    document_id: uuid.UUID
    version: int


@dataclass(frozen=True, slots=True)
class Appended:
    """What one request added: the offset to report and whether the final part is stored."""

    offset: int
    parts_stored: int
    final_stored: bool
    expires_at: datetime | None


def part_count(length: int, part_size: int) -> int:
    return max(1, -(-length // part_size))


def max_length(part_size: int) -> int:
    """The largest upload whose parts fit S3's part numbers at this part size."""
    return MAX_PARTS * part_size


def reported_offset(upload: Upload) -> int:
    """The tus `Upload-Offset`: the length only once the version is committed."""
    return upload.upload_length if upload.state == UploadState.COMPLETE else upload.stored_offset


def is_live(upload: Upload, now: datetime | None = None) -> bool:
    return upload.expires_at > (now or datetime.now(UTC))


def parse_metadata(raw: str) -> dict[str, bytes]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs (value optional).

    Raises:
        VaultError: malformed pairs, duplicate keys or invalid base64.
    """
    if len(raw) > MAX_METADATA:
        raise VaultError(f"Upload-Metadata is longer than {MAX_METADATA} characters")
    pairs: dict[str, bytes] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        value = value.strip()
        if not key or " " in value or key in pairs:
            raise VaultError(f"Upload-Metadata has a malformed or repeated key {key!r}")
        try:
            pairs[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(f"Upload-Metadata value of {key!r} is not base64") from None
    return pairs


def _plan(upload: Upload, keyring: Keyring) -> doc_service.UploadPlan:
    return doc_service.UploadPlan(
        client_id=upload.client_id,
        folder_id=upload.folder_id,
        document_id=upload.document_id,
        version_id=upload.version_id,
        name=upload.name,
        is_new=upload.is_new,
        storage_key=upload.storage_key,
        kek_id=upload.kek_id,
        wrapped_dek=upload.wrapped_dek,
        dek=keyring.unwrap(upload.kek_id, upload.wrapped_dek),
    )


@dataclass(frozen=True, slots=True)
class Resumable:
    """An upload as one request continues it, read from its row; holds the unwrapped key."""

    id: uuid.UUID
    plan: doc_service.UploadPlan = field(repr=False)  # it holds the data key
    header: bytes
    multipart_id: str
    length: int
    part_size: int
    offset: int
    content_type: str | None

    @classmethod
    def of(cls, upload: Upload, keyring: Keyring) -> Resumable:
        return cls(
            id=upload.id,
            plan=_plan(upload, keyring),
            header=upload.header,
            multipart_id=upload.multipart_id,
            length=upload.upload_length,
            part_size=upload.part_size,
            offset=upload.stored_offset,
            content_type=upload.content_type,
        )

    def sealer(self) -> crypto.SegmentSealer:
        # The recorded header carries the salt and nonce prefix: the same sealer in any process.
        return crypto.SegmentSealer.from_header(self.plan.dek, self.header, self.plan.context)

    @property
    def segments_per_part(self) -> int:
        return self.part_size >> crypto.Header.unpack(self.header).segment_shift


# --- Creating, finding, terminating ------------------------------------------------------------


async def create_upload(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    keyring: Keyring,
    store: ObjectStore,
    *,
    folder_id: uuid.UUID,
    name: str,
    length: int,
    part_size: int,
    max_size: int,
    expires_in: timedelta,
    metadata: str | None = None,
    content_type: str | None = None,
) -> Upload:
    """Plan the version, start its multipart upload and record both, with an audit event.

    Raises:
        NotFoundError: the folder does not exist for this caller.
        PermissionDeniedError: the caller may not upload there (e.g. a read-only token).
        InvalidNameError: the name breaks a naming rule.
        TooLargeError: longer than `max_size`, or than `MAX_PARTS` parts of `part_size`.
    """
    if part_size % (1 << crypto.DEFAULT_SHIFT):
        raise ValueError("a part holds whole 64 KiB segments")
    plan = await doc_service.prepare_upload(
        session, principal, keyring, folder_id=folder_id, name=name
    )
    limit = min(max_size, max_length(part_size))
    if length > limit:
        raise TooLargeError(f"the upload is larger than the {limit} bytes allowed")
    header = plan.sealer().header
    multipart_id = await store.create_multipart(plan.storage_key)
    now = datetime.now(UTC)
    upload = Upload(
        owner_id=principal.user_id,
        client_id=plan.client_id,
        folder_id=plan.folder_id,
        document_id=plan.document_id,
        version_id=plan.version_id,
        name=plan.name,
        is_new=plan.is_new,
        storage_key=plan.storage_key,
        multipart_id=multipart_id,
        kek_id=plan.kek_id,
        wrapped_dek=plan.wrapped_dek,
        header=header,
        upload_length=length,
        part_size=part_size,
        stored_offset=0,
        tus_metadata=metadata,
        content_type=content_type,
        state=UploadState.OPEN,
        created_at=now,
        updated_at=now,
        expires_at=now + expires_in,
    )
    try:
        session.add(upload)
        await session.flush()
        await audit.record(
            session,
            context,
            "upload.created",
            client_id=upload.client_id,
            target_type="upload",
            target_id=upload.id,
            details={"name": upload.name, "folder_id": str(upload.folder_id), "length": length},
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.abort_multipart(plan.storage_key, multipart_id)
        raise
    return upload


async def get_upload(
    session: AsyncSession,
    principal: Principal,
    upload_id: uuid.UUID,
    *,
    write: bool = False,
    lock: bool = False,
) -> Upload:
    """The caller's own upload; anyone else's, an expired or a missing one is not found."""
    query = select(Upload).where(Upload.id == upload_id)
    upload = (
        await session.execute(query.with_for_update() if lock else query)
    ).scalar_one_or_none()
    # Uploads belong to their creator alone: staff of the same client get the same 404.
    if (
        upload is None
        or upload.owner_id != principal.user_id
        or not can_see_client(principal, upload.client_id)
        or not is_live(upload)
    ):
        raise NotFoundError("upload not found")
    require(principal, Permission.UPLOAD if write else Permission.VIEW, upload.client_id)
    return upload


async def _delete_rows(session: AsyncSession, upload: Upload) -> None:
    await session.execute(delete(UploadPart).where(col(UploadPart.upload_id) == upload.id))
    await session.delete(upload)
    await session.flush()


async def terminate(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    upload_id: uuid.UUID,
) -> Upload:
    """Forget the upload (tus termination). The caller then drops its stored bytes with
    `discard`, after this transaction commits. A committed version stays."""
    upload = await get_upload(session, principal, upload_id, write=True, lock=True)
    if upload.state == UploadState.FINISHING and _lease_held(upload):
        raise ConflictError("the upload is being finished; it cannot be terminated now")
    await _delete_rows(session, upload)
    if upload.state != UploadState.COMPLETE:
        await audit.record(
            session,
            context,
            "upload.terminated",
            client_id=upload.client_id,
            target_type="upload",
            target_id=upload.id,
            details={"name": upload.name, "offset": upload.stored_offset},
        )
    return upload


async def discard(store: ObjectStore, upload: Upload) -> None:
    """Drop the stored parts (and an assembled object) of an upload that will never commit."""
    if upload.state == UploadState.COMPLETE:
        return
    await store.abort_multipart(upload.storage_key, upload.multipart_id)
    await store.delete(upload.storage_key)


def _lease_held(upload: Upload, now: datetime | None = None) -> bool:
    return upload.lease_until is not None and upload.lease_until > (now or datetime.now(UTC))


# --- Parts -------------------------------------------------------------------------------------


async def _locked(session: AsyncSession, upload_id: uuid.UUID) -> Upload:
    upload = (
        await session.execute(select(Upload).where(Upload.id == upload_id).with_for_update())
    ).scalar_one_or_none()
    if upload is None or not is_live(upload):
        raise NotFoundError("upload not found")
    return upload


async def _claim_part(
    sessions: async_sessionmaker[AsyncSession],
    upload_id: uuid.UUID,
    number: int,
    fingerprint: bytes,
    size: int,
) -> str | None:
    """Record the part's fingerprint before anything is encrypted; the etag if already stored.

    Raises:
        NonceReuseError: a fingerprint for this part was recorded from different bytes.
    """
    async with transaction(sessions) as session:
        await _locked(session, upload_id)
        part = await session.get(UploadPart, (upload_id, number))
        if part is None:
            session.add(
                UploadPart(upload_id=upload_id, number=number, fingerprint=fingerprint, size=size)
            )
            return None
        if not hmac.compare_digest(part.fingerprint, fingerprint):
            raise NonceReuseError(
                f"part {number} was already sent with different bytes; its encryption nonces "
                "cannot be used again, so start a new upload"
            )
        return part.etag


async def _record_part(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    number: int,
    etag: str,
    *,
    final: bool,
    expires_in: timedelta,
) -> Upload:
    async with transaction(sessions) as session:
        row = await _locked(session, upload.id)
        if row.state == UploadState.COMPLETE:
            return row  # a racing request finished it meanwhile, with this very part
        part = await session.get(UploadPart, (upload.id, number))
        if part is None:
            raise NotFoundError("upload not found")
        part.etag = etag
        session.add(part)
        # Only a contiguous run of parts moves the offset; a duplicate request that stored
        # a part again finds the offset already past it.
        if not final and row.stored_offset == (number - 1) * upload.part_size:
            row.stored_offset = number * upload.part_size
        now = datetime.now(UTC)
        row.updated_at = now
        row.expires_at = now + expires_in
        session.add(row)
        return row


@dataclass(frozen=True, slots=True)
class _Received:
    number: int
    chunks: list[bytes] = field(repr=False)  # joined off the event loop
    final: bool


@dataclass(frozen=True, slots=True)
class _Plain:
    number: int
    data: bytes = field(repr=False)
    final: bool


@dataclass(frozen=True, slots=True)
class _Claimed:
    part: _Plain
    fingerprint: bytes
    etag: str | None  # the store has it already under this etag


@dataclass(frozen=True, slots=True)
class _Sealed:
    number: int
    ciphertext: bytes | None = field(repr=False)  # None: the store has it already...
    etag: str  # ...under this etag
    final: bool


@dataclass(slots=True)
class _Progress:
    stored: int = 0
    row: Upload | None = None


async def _claim_parts(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    received: MemoryObjectReceiveStream[_Received],
    claimed: MemoryObjectSendStream[_Claimed],
    hashing: MemoryObjectSendStream[_Plain] | None,
) -> None:
    """Record each part's fingerprint before anything is encrypted, in order; then hand it
    on to be sealed and, apart, to be hashed."""

    def fingerprint(chunks: list[bytes]) -> tuple[bytes, bytes]:
        data = b"".join(chunks)  # a join this large lets go of the GIL while it copies
        return data, sealer.fingerprint(data)

    async with received, claimed, hashing or contextlib.nullcontext():
        async for item in received:
            data, mark = await anyio.to_thread.run_sync(fingerprint, item.chunks)
            etag = await _claim_part(sessions, upload.id, item.number, mark, len(data))
            part = _Plain(item.number, data, item.final)
            await claimed.send(_Claimed(part, mark, etag))
            if hashing is not None:
                await hashing.send(part)


async def _hash_parts(
    upload: Resumable, digests: RunningDigests, hashing: MemoryObjectReceiveStream[_Plain]
) -> None:
    """Extend the running SHA-256 with each claimed part, in order, beside the sealing."""
    async with hashing:
        async for part in hashing:
            await digests.extend(upload.id, part.number, part.data)


async def _seal_parts(
    upload: Resumable,
    sealer: crypto.SegmentSealer,
    claimed: MemoryObjectReceiveStream[_Claimed],
    sealed: MemoryObjectSendStream[_Sealed],
) -> None:
    """Encrypt each claimed part (unless the store has it), in order."""
    async with claimed, sealed:
        async for item in claimed:
            part = item.part

            def encrypt(part: _Plain = part, fingerprint: bytes = item.fingerprint) -> bytes:
                # The fingerprint just claimed is checked once more before any AES-GCM call;
                # the part is immutable bytes, so it is not computed again.
                return crypto.encrypt_part(
                    sealer,
                    part.number,
                    upload.segments_per_part,
                    part.data,
                    final=part.final,
                    recorded={part.number: fingerprint},
                    fingerprint=fingerprint,
                ).ciphertext

            ciphertext = None
            if item.etag is None:
                ciphertext = await anyio.to_thread.run_sync(encrypt)
            await sealed.send(_Sealed(part.number, ciphertext, item.etag or "", part.final))


@dataclass(slots=True)
class _Storing:
    """A part on its way into the store; `done` is set once it is there under `etag`."""

    number: int
    final: bool
    etag: str = ""
    done: anyio.Event = field(default_factory=anyio.Event)


async def _store_parts(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    sealed: MemoryObjectReceiveStream[_Sealed],
    storing: MemoryObjectSendStream[_Storing],
) -> None:
    """Write the encrypted parts to the store, `_STORE_CONCURRENCY` at a time (one part's
    wait for the disk or the network overlaps the next one's), passing them on in order."""
    limiter = anyio.Semaphore(_STORE_CONCURRENCY)

    async def write(part: _Sealed, ciphertext: bytes, item: _Storing) -> None:
        try:
            item.etag = await store.upload_part(
                upload.plan.storage_key, upload.multipart_id, part.number, ciphertext
            )
        except Exception:
            # A terminated or expired upload loses its multipart upload first: say so,
            # rather than report a store failure.
            async with transaction(sessions) as session:
                await _locked(session, upload.id)
            raise
        finally:
            limiter.release()
        item.done.set()

    async with sealed, storing, anyio.create_task_group() as writes:
        async for part in sealed:
            item = _Storing(part.number, part.final, part.etag)
            if part.ciphertext is None:
                item.done.set()
            else:
                await limiter.acquire()
                writes.start_soon(write, part, part.ciphertext, item)
            await storing.send(item)


async def _record_parts(
    sessions: async_sessionmaker[AsyncSession],
    upload: Resumable,
    storing: MemoryObjectReceiveStream[_Storing],
    progress: _Progress,
    expires_in: timedelta,
) -> None:
    """Record each stored part, in order (the offset moves part by part)."""
    async with storing:
        async for item in storing:
            await item.done.wait()
            progress.row = await _record_part(
                sessions, upload, item.number, item.etag, final=item.final, expires_in=expires_in
            )
            progress.stored += 1


async def append(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    chunks: AsyncIterable[bytes],
    *,
    expires_in: timedelta,
    digests: RunningDigests | None = None,
) -> Appended:
    """Store the whole parts in `chunks`, which continue the upload at `upload.offset`.

    A pipeline, each stage working on its own part and in part order: claim (the
    fingerprint, recorded before anything is encrypted), seal (encrypt; beside it, extend
    the running SHA-256 in `digests`, if given: see `vault.digests`), store (two parts at a
    time) and record. So the request holds about ten parts of plaintext or ciphertext at
    most, whatever the upload's size. Bytes after the last whole part are dropped (the
    reported offset tells the client where to resume); the final part is stored only if the
    body ended exactly at the upload's length. It returns once every part it took is stored
    and recorded.

    Raises:
        TooLargeError: the body runs past the upload's length. Whole parts before that
            point are kept; the final part is not stored.
        NonceReuseError: a part was offered again with different bytes.
    """
    part_size, length = upload.part_size, upload.length
    cursor = upload.offset
    number = cursor // part_size + 1
    remaining = length - cursor
    sealer = upload.sealer()
    progress = _Progress()
    to_claim, arrived = anyio.create_memory_object_stream[_Received]()
    to_seal, claimed = anyio.create_memory_object_stream[_Claimed]()
    to_store, sealed = anyio.create_memory_object_stream[_Sealed]()
    to_record, stored = anyio.create_memory_object_stream[_Storing](_STORE_CONCURRENCY)
    final = False
    refused: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            to_hash: MemoryObjectSendStream[_Plain] | None = None
            if digests is not None:
                to_hash, hashing = anyio.create_memory_object_stream[_Plain](1)
                tasks.start_soon(_hash_parts, upload, digests, hashing)
            tasks.start_soon(_claim_parts, sessions, upload, sealer, arrived, to_seal, to_hash)
            tasks.start_soon(_seal_parts, upload, sealer, claimed, to_store)
            tasks.start_soon(_store_parts, sessions, store, upload, sealed, to_record)
            tasks.start_soon(_record_parts, sessions, upload, stored, progress, expires_in)
            async with to_claim:
                try:
                    pending: list[bytes] = []
                    pending_size = received = 0
                    async for chunk in chunks:
                        received += len(chunk)
                        if received > remaining:
                            raise TooLargeError(
                                f"the body runs past the upload's length of {length} bytes "
                                f"(it started at offset {upload.offset})"
                            )
                        # A part ending before the upload's length is whole at part_size bytes.
                        while (
                            cursor + part_size < length and pending_size + len(chunk) >= part_size
                        ):
                            cut = part_size - pending_size
                            pending.append(chunk[:cut])
                            chunk = chunk[cut:]
                            await to_claim.send(_Received(number, pending, final=False))
                            pending, pending_size = [], 0
                            cursor += part_size
                            number += 1
                        if chunk:
                            pending.append(chunk)
                            pending_size += len(chunk)
                    final = cursor + pending_size == length
                    if final:
                        await to_claim.send(_Received(number, pending, final=True))
                except Exception as exc:
                    # The parts already handed on are still stored before this is raised.
                    refused = exc
    except BaseExceptionGroup as group:
        raise blobs.first_failure(group) from None
    if refused is not None:
        raise refused
    return Appended(
        offset=cursor,
        parts_stored=progress.stored,
        final_stored=final,
        expires_at=None if progress.row is None else progress.row.expires_at,
    )


# --- Finishing ---------------------------------------------------------------------------------


class _LeaseLost(VaultError):
    """Another process took over finishing after this one's hold lapsed."""


def _hold(upload: Upload, now: datetime) -> None:
    upload.lease_until = now + FINISH_LEASE
    # An upload being finished must not expire under its finisher.
    upload.expires_at = max(upload.expires_at, upload.lease_until)


async def _take_over(
    sessions: async_sessionmaker[AsyncSession], upload_id: uuid.UUID, token: str
) -> Finished | Upload | None:
    """The finished version, the upload now held by `token`, or None while another holds it."""
    async with transaction(sessions) as session:
        upload = await _locked(session, upload_id)
        if upload.state == UploadState.COMPLETE:
            return Finished(upload.document_id, upload.version_number or 0)
        now = datetime.now(UTC)
        if upload.state == UploadState.FINISHING and _lease_held(upload, now):
            return None
        count = part_count(upload.upload_length, upload.part_size)
        stored = (
            await session.execute(
                select(UploadPart.number).where(
                    UploadPart.upload_id == upload_id, col(UploadPart.etag).is_not(None)
                )
            )
        ).scalars()
        if set(stored) != set(range(1, count + 1)):
            raise ConflictError("the upload is missing parts; continue it before finishing")
        upload.state = UploadState.FINISHING
        upload.claim = token
        _hold(upload, now)
        session.add(upload)
        return upload


async def _renew(
    sessions: async_sessionmaker[AsyncSession], upload_id: uuid.UUID, token: str
) -> None:
    async with transaction(sessions) as session:
        upload = await _locked(session, upload_id)
        if upload.claim != token:
            raise _LeaseLost("another process is finishing this upload")
        _hold(upload, datetime.now(UTC))
        session.add(upload)


async def _assembled_size(store: ObjectStore, key: str) -> int | None:
    async for found in store.list(key):
        if found.key == key:
            return found.size
    return None


async def _assemble(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    token: str,
    *,
    known_sha256: str | None = None,
) -> blobs.StoredBlob:
    """Join the parts into the object (once), then read it back to authenticate it (and to
    hash its plaintext, unless `known_sha256` came from the process that saw every part)."""
    key = upload.plan.storage_key
    size = crypto.object_size(upload.length)
    found = await _assembled_size(store, key)
    if found is None:
        count = part_count(upload.length, upload.part_size)
        # The store's own etags: a part stored twice by racing requests holds the same bytes,
        # but only the store knows which upload of it is current.
        parts = await store.list_parts(key, upload.multipart_id)
        if [p.part_number for p in parts] != list(range(1, count + 1)):
            raise IntegrityError(f"the store holds parts {[p.part_number for p in parts]}")
        await store.complete_multipart(
            key, upload.multipart_id, [(p.part_number, p.etag) for p in parts]
        )
    elif found != size:
        raise IntegrityError(f"the assembled object is {found} bytes, not {size}")
    plaintext, digest = await _read_back(sessions, store, upload, token, known=known_sha256)
    if plaintext != upload.length:
        raise IntegrityError(f"the object holds {plaintext} bytes, not {upload.length}")
    return blobs.StoredBlob(
        key=key,
        object_size=size,
        plaintext_size=plaintext,
        sha256=digest,
        header=upload.header,
    )


async def _read_back(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload: Resumable,
    token: str,
    *,
    known: str | None,
) -> tuple[int, str]:
    """Authenticate every segment of the assembled object, and hash its plaintext unless
    the digest is `known`: (plaintext bytes, hex SHA-256).

    The next batch of ciphertext is read while the last is decrypted in a worker thread.
    With nothing to hash in order, the two halves of the object are read at once.
    """
    size, length = crypto.object_size(upload.length), upload.length
    digest = hashlib.sha256()
    if length == 0:
        return 0, digest.hexdigest()
    opened = crypto.parse_header(upload.header, upload.plan.context, upload.plan.dek)
    segment = opened.segment_size
    middle = (length // 2) // segment * segment
    spans = [(0, middle), (middle, length)] if known is not None and middle else [(0, length)]
    renewed = [time.monotonic()]
    counted: list[int] = []

    async def verify(plain_start: int, plain_end: int) -> None:
        _, start, end = crypto.ciphertext_range(plain_start, plain_end, size)
        decryptor = crypto.RangeDecryptor(
            opened, plain_start=plain_start, plain_end=plain_end, object_size=size
        )

        def consume(batch: list[bytes]) -> int:
            count = 0
            for chunk in batch:
                for piece in decryptor.feed(chunk):
                    if known is None:
                        digest.update(piece)
                    count += len(piece)
            return count

        send, receive = anyio.create_memory_object_stream[list[bytes]](1)

        async def read() -> None:
            async with send:
                batch: list[bytes] = []
                held = 0
                async for chunk in store.read(upload.plan.storage_key, start, end):
                    batch.append(chunk)
                    held += len(chunk)
                    if held >= _READ_BACK_BATCH:
                        await send.send(batch)
                        batch, held = [], 0
                if batch:
                    await send.send(batch)

        async with anyio.create_task_group() as reading:
            reading.start_soon(read)
            async with receive:
                async for batch in receive:
                    counted.append(await anyio.to_thread.run_sync(consume, batch))
                    if time.monotonic() - renewed[0] > _RENEW_EVERY:
                        renewed[0] = time.monotonic()
                        await _renew(sessions, upload.id, token)
        decryptor.finish()

    try:
        async with anyio.create_task_group() as tasks:
            for plain_start, plain_end in spans:
                tasks.start_soon(verify, plain_start, plain_end)
    except BaseExceptionGroup as group:
        raise blobs.first_failure(group) from None
    return sum(counted), known or digest.hexdigest()


async def finish(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    principal: Principal,
    context: audit.AuditContext,
    upload_id: uuid.UUID,
    *,
    digests: RunningDigests | None = None,
) -> Finished:
    """Turn a fully stored upload into its document version, exactly once.

    Any number of processes may call this at once: one holds the upload (a lease in its
    row) while it assembles, hashes and commits; the others wait and return the same
    version. A holder that dies lets the next caller take over when the lease lapses.

    Raises:
        ConflictError: a part is missing, or the document changed in a way this version can
            no longer join (deleted, or created by another upload); in the latter case the
            upload is discarded and must start again.
    """
    token = str(uuid.uuid4())
    while True:
        taken = await _take_over(sessions, upload_id, token)
        if isinstance(taken, Finished):
            return taken
        if taken is not None:
            resumable = Resumable.of(taken, keyring)
            break
        await anyio.sleep(_WAIT_POLL)
    try:
        known = None
        if digests is not None:
            known = digests.take(upload_id, part_count(resumable.length, resumable.part_size))
        blob = await _assemble(sessions, store, resumable, token, known_sha256=known)
        async with transaction(sessions) as session:
            row = await _locked(session, upload_id)
            if row.claim != token:
                raise _LeaseLost("another process is finishing this upload")
            document, version = await doc_service.commit_upload(
                session,
                principal,
                context,
                resumable.plan,
                blob,
                content_type=resumable.content_type,
                details={"upload_id": str(upload_id)},
            )
            row.state = UploadState.COMPLETE
            row.version_number = version.number
            row.claim = None
            row.lease_until = None
            row.updated_at = datetime.now(UTC)
            session.add(row)
        return Finished(document.id, version.number)
    except _LeaseLost:
        # Whoever holds it now finishes; wait for their answer like any other caller.
        return await finish(
            sessions, store, keyring, principal, context, upload_id, digests=digests
        )
    except ConflictError:
        with anyio.CancelScope(shield=True):
            await _abandon(sessions, store, upload_id, token, context)
        raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _release(sessions, upload_id, token)
        raise


async def _release(
    sessions: async_sessionmaker[AsyncSession], upload_id: uuid.UUID, token: str
) -> None:
    """Give the upload back after a failed finish, so that a retry can finish it."""
    try:
        async with transaction(sessions) as session:
            upload = await _locked(session, upload_id)
            if upload.claim == token:
                upload.state = UploadState.OPEN
                upload.claim = None
                upload.lease_until = None
                session.add(upload)
    except Exception:
        # The lease lapses on its own; the next caller takes over then.
        logger.warning("could not release upload %s", upload_id, exc_info=True)


async def _abandon(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    upload_id: uuid.UUID,
    token: str,
    context: audit.AuditContext,
) -> None:
    """The version can never be committed (its document changed): drop the upload."""
    try:
        async with transaction(sessions) as session:
            upload = await _locked(session, upload_id)
            if upload.claim != token:
                return
            await _delete_rows(session, upload)
            await audit.record(
                session,
                context,
                "upload.failed",
                outcome="error",
                client_id=upload.client_id,
                target_type="upload",
                target_id=upload.id,
                details={"name": upload.name, "reason": "the document changed during the upload"},
            )
        await discard(store, upload)
    except Exception:
        logger.warning("could not discard upload %s", upload_id, exc_info=True)


# --- Expiry (run by `clientvault gc`) ----------------------------------------------------------


async def expire_uploads(
    sessions: async_sessionmaker[AsyncSession], store: ObjectStore, *, now: datetime | None = None
) -> int:
    """Forget uploads past their expiry and drop their stored parts; how many were unfinished.

    Each row is deleted in its own transaction after re-checking its expiry (a request may
    have just extended it), and only then are its parts aborted, so a live upload never
    loses its parts. A failed abort leaves parts no row refers to, which `collect_garbage`
    aborts once they are older than its grace.
    """
    now = now or datetime.now(UTC)
    async with sessions() as session:
        ids = (
            (await session.execute(select(Upload.id).where(col(Upload.expires_at) <= now)))
            .scalars()
            .all()
        )
    unfinished = 0
    for upload_id in ids:
        async with transaction(sessions) as session:
            upload = (
                await session.execute(
                    select(Upload).where(Upload.id == upload_id).with_for_update()
                )
            ).scalar_one_or_none()
            if upload is None or upload.expires_at > now or _lease_held(upload, now):
                continue
            await _delete_rows(session, upload)
            if upload.state != UploadState.COMPLETE:
                await audit.record(
                    session,
                    audit.SYSTEM,
                    "upload.expired",
                    client_id=upload.client_id,
                    target_type="upload",
                    target_id=upload.id,
                    details={"name": upload.name, "offset": upload.stored_offset},
                )
        if upload.state != UploadState.COMPLETE:
            await discard(store, upload)
            unfinished += 1
    return unfinished


async def live_storage_keys(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Object keys that unfinished uploads are still writing: garbage collection skips them."""
    async with sessions() as session:
        keys = await session.execute(
            select(Upload.storage_key).where(Upload.state != UploadState.COMPLETE)
        )
        return set(keys.scalars())
