"""Resumable uploads (the tus protocol's domain side): an upload session that lives only in
the database and the object store, so any app process can continue or finish it.

An upload is one future document version. Its plan (ids, wrapped data key, object header,
multipart upload id) is fixed and stored when the upload is created; every part is then
encrypted on its own with `crypto.encrypt_part` under that one header. An upload of one
part has no multipart upload (its id is empty): its part is the whole object, stored with
one `put_new` once a request completes it, and pinned by the etag that returns.

Segments (64 KiB) are the unit of progress, parts the unit of storage. The plaintext of
part `p` is bytes `[(p-1)·part_size, p·part_size)`; a request stores its whole parts as
multipart parts and stages the whole segments after them (`vault.uploads.staging`), so the
offset an upload reports is always a segment boundary. The final part (the one that reaches
the upload's length) is stored only when a request delivered all of it, and the offset
jumps to the length only once the version is committed: until then a client resends the
final part, which is harmless (see below), and never sees an upload that is "complete"
without its document.

Nonce safety: a segment's nonce is fixed by its index, so its GCM tag is committed to its
part's `upload_parts` row before its ciphertext leaves the process: the same bytes again
give the same ciphertext and tag, other bytes are refused (`NonceReuseError`) and their
ciphertext dropped unseen (`vault.uploads.staging`). The row lock serialises claims across
processes, and the tags stay until the upload row goes.

SHA-256: a hash object cannot travel between processes, so each process keeps the running
digest of the uploads it has seen from part 1 on (`vault.crypto.digests`, a cache); `finish` uses
it when this process saw every part, and otherwise hashes the plaintext while it reads the
assembled object back. No version appears before its bytes are proven: by that read-back,
which authenticates every segment, or by the store's per-part evidence (S3's signed
receipts, the local store's write-once parts) when this process sealed every part itself.

This module holds the tables, their states and the session's life outside a request
(create, find, terminate, expire); `vault.uploads.append` stores parts (`append`, a pipeline
of claim, seal, store and record, one part per stage) and `vault.uploads.finish` turns a
fully stored upload into its version (`finish`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import anyio
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Text, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select

from vault import audit, crypto
from vault import documents as doc_service
from vault.audit.actions import AuditAction
from vault.crypto.keyring import Keyring
from vault.db import reading, transaction
from vault.errors import ConflictError, IntegrityError, NotFoundError, TooLargeError
from vault.models import utcnow
from vault.policy import Permission, Principal, can_see_client, require
from vault.quarantine_tables import HeldVersion
from vault.store import MAX_OBJECT_SIZE, ObjectStore, part_size_for


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
    # Plaintext bytes in contiguous stored parts and staged segments, the final part's
    # stored part never counted (its staged segments are).
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
    """A part claimed by its segments' tags; `etag` is set once the store has it."""

    __tablename__ = "upload_parts"
    upload_id: uuid.UUID = Field(foreign_key="uploads.id", primary_key=True)
    number: int = Field(primary_key=True)
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    etag: str | None = Field(default=None, sa_column=Column(String(256), nullable=True))
    # One tag per claimed segment, from the part's first: its GCM tag (an upload claimed
    # before an upgrade may hold keyed HMAC tags, `SegmentSealer.legacy_segment_tags`);
    # NULL for parts claimed whole before migration 0011, checked by `fingerprint` alone.
    tags: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class StagedRun(SQLModel, table=True):
    """Sealed segments of a part that no request has completed yet (ciphertext only).

    A PATCH that ends inside a part keeps its whole segments here, since S3 refuses parts
    under 5 MiB; the request that completes the part reads them back, authenticates them and
    stores the whole part. So an upload holds less than one part here at any time, besides
    the final part's, which stay until the upload row goes (a failed finish resends it).
    """

    __tablename__ = "upload_staged"
    upload_id: uuid.UUID = Field(foreign_key="uploads.id", primary_key=True)
    first_segment: int = Field(sa_column=Column(BigInteger, primary_key=True))
    segments: int = Field(sa_column=Column(Integer, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


def part_count(length: int, part_size: int) -> int:
    return max(1, -(-length // part_size))


# The largest upload whose object the store can hold.
MAX_LENGTH = crypto.plaintext_size(MAX_OBJECT_SIZE)


def reported_offset(upload: Upload) -> int:
    """The tus `Upload-Offset`: the length only once the version is committed."""
    return upload.upload_length if upload.state == UploadState.COMPLETE else upload.stored_offset


def is_live(upload: Upload, now: datetime | None = None) -> bool:
    return upload.expires_at > (now or datetime.now(UTC))


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
    new_document: bool = False,
) -> Upload:
    """Plan the version, start its multipart upload (unless it has one part) and record both,
    with an audit event. With `new_document` it starts a new document under a free name
    (`plan_new_document`).

    Raises:
        NotFoundError: the folder does not exist for this caller.
        PermissionDeniedError: the caller may not upload there (e.g. a read-only token).
        InvalidNameError: the name breaks a naming rule.
        TooLargeError: longer than `max_size`, or than the store can hold (`MAX_LENGTH`).

    The upload's parts are `part_size` long, or longer where that many would not hold
    `length` in the store's `MAX_PARTS` (`vault.store.part_size_for`).
    """
    if part_size % (1 << crypto.DEFAULT_SHIFT):
        raise ValueError("a part holds whole 64 KiB segments")
    part_size = part_size_for(length, part_size)
    plan = await (plan_new_document if new_document else doc_service.prepare_upload)(
        session, principal, keyring, folder_id=folder_id, name=name
    )
    limit = min(max_size, MAX_LENGTH)
    if length > limit:
        raise TooLargeError(f"the upload is larger than the {limit} bytes allowed")
    header = plan.sealer().header
    # One part goes in one PUT as it completes: no multipart upload to start, nor to end.
    one_part = part_count(length, part_size) == 1
    multipart_id = "" if one_part else await store.create_multipart(plan.storage_key)
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
            AuditAction.UPLOAD_CREATED,
            client_id=upload.client_id,
            target_type="upload",
            target_id=upload.id,
            details={"name": upload.name, "folder_id": str(upload.folder_id), "length": length},
        )
    except BaseException:
        if multipart_id:
            with anyio.CancelScope(shield=True):
                await store.abort_multipart(plan.storage_key, multipart_id)
        raise
    return upload


async def plan_new_document(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    *,
    folder_id: uuid.UUID,
    name: str,
) -> doc_service.UploadPlan:
    """A plan for a new document under a free name (`names.free_name`): one taken neither
    by the folder's documents and subfolders nor by a new document still on its way (an
    upload under way, or a version held in quarantine), so two drops of `plan.txt` become
    `plan (2).txt` and `plan (3).txt` instead of the later one failing as it finishes."""
    uploading = select(Upload.name).where(
        Upload.folder_id == folder_id,
        col(Upload.is_new),
        Upload.state != UploadState.COMPLETE,
        col(Upload.expires_at) > datetime.now(UTC),  # an abandoned upload holds no name
    )
    held = select(HeldVersion.name).where(
        HeldVersion.folder_id == folder_id,
        col(HeldVersion.is_new),
        col(HeldVersion.published_version).is_(None),
        col(HeldVersion.deleted_at).is_(None),
    )
    reserved = [
        *(await session.execute(uploading)).scalars(),
        *(await session.execute(held)).scalars(),
    ]
    return await doc_service.prepare_upload(
        session,
        principal,
        keyring,
        folder_id=folder_id,
        name=name,
        new_document=True,
        reserved=reserved,
    )


async def get_upload(
    session: AsyncSession,
    principal: Principal,
    upload_id: uuid.UUID,
    *,
    write: bool = False,
    lock: bool = False,
    context: audit.AuditContext | None = None,
) -> Upload:
    """The caller's own upload; anyone else's, an expired or a missing one is not found.
    Its state shown to the caller (audited) when `context` is given."""
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
    if context is not None:
        await audit.record(
            session,
            context,
            AuditAction.UPLOAD_CHECKED,
            client_id=upload.client_id,
            target_type="upload",
            target_id=upload.id,
            details={"offset": reported_offset(upload), "length": upload.upload_length},
        )
    return upload


async def delete_rows(session: AsyncSession, upload: Upload) -> None:
    """Delete the upload's row, its claims and staged segments (the parts stay: `discard`)."""
    await session.execute(delete(UploadPart).where(col(UploadPart.upload_id) == upload.id))
    await session.execute(delete(StagedRun).where(col(StagedRun.upload_id) == upload.id))
    await session.delete(upload)
    await session.flush()


async def terminate(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    upload_id: uuid.UUID,
    *,
    reason: str | None = None,
) -> Upload:
    """Forget the upload: tus termination, or with `reason` an upload that failed. The caller
    then drops its stored bytes with `discard`, after this transaction commits. A committed
    version stays."""
    upload = await get_upload(session, principal, upload_id, write=True, lock=True)
    if upload.state == UploadState.FINISHING and lease_held(upload):
        raise ConflictError("the upload is being finished; it cannot be terminated now")
    await delete_rows(session, upload)
    if upload.state != UploadState.COMPLETE:
        await audit.record(
            session,
            context,
            AuditAction.UPLOAD_TERMINATED if reason is None else AuditAction.UPLOAD_FAILED,
            outcome="success" if reason is None else "error",
            client_id=upload.client_id,
            target_type="upload",
            target_id=upload.id,
            details={"name": upload.name}
            | ({"offset": upload.stored_offset} if reason is None else {"reason": reason}),
        )
    return upload


async def discard(store: ObjectStore, upload: Upload) -> None:
    """Drop the stored parts (and an assembled object) of an upload that will never commit."""
    if upload.state == UploadState.COMPLETE:
        return
    if upload.multipart_id:
        await store.abort_multipart(upload.storage_key, upload.multipart_id)
    await store.delete(upload.storage_key)


# Recorded for an only part whose object was there already: pins nothing (it is read back).
WHOLE_OBJECT = "whole-object"


async def put_whole(store: ObjectStore, upload: Resumable, ciphertext: memoryview) -> str:
    """Store the only part of an upload of one part as its object; its etag to record."""
    key = upload.plan.storage_key
    if (etag := await store.put_new(key, bytes(ciphertext))) is not None:
        return etag
    # Stored by this part sent before, whose finish failed: the same bytes, since the
    # segments' tags were claimed for them. The finisher reads the object back anyway.
    found = (await store.head(key)).size
    if found != len(ciphertext):
        raise IntegrityError(f"the upload's object is {found} bytes, not {len(ciphertext)}")
    return WHOLE_OBJECT


def lease_held(upload: Upload, now: datetime | None = None) -> bool:
    """Whether a finisher holds the upload (`vault.uploads.finish`): it must not go meanwhile."""
    return upload.lease_until is not None and upload.lease_until > (now or datetime.now(UTC))


# --- Shared by appending and finishing --------------------------------------------------------


async def locked(session: AsyncSession, upload_id: uuid.UUID) -> Upload:
    """The live upload, its row locked: every change to an upload's progress is made under
    this lock, which serialises parts and finishers across processes."""
    upload = (
        await session.execute(select(Upload).where(Upload.id == upload_id).with_for_update())
    ).scalar_one_or_none()
    if upload is None or not is_live(upload):
        raise NotFoundError("upload not found")
    return upload


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
    async with reading(sessions) as session:
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
            if upload is None or upload.expires_at > now or lease_held(upload, now):
                continue
            await delete_rows(session, upload)
            if upload.state != UploadState.COMPLETE:
                await audit.record(
                    session,
                    audit.SYSTEM,
                    AuditAction.UPLOAD_EXPIRED,
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
    async with reading(sessions) as session:
        keys = await session.execute(
            select(Upload.storage_key).where(Upload.state != UploadState.COMPLETE)
        )
        return set(keys.scalars())
