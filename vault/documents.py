"""Documents and their versions: upload, metadata, download and trash.

An upload runs in three steps so that no database transaction is held open while bytes
stream: `prepare_upload` (authorise, pick ids), `blobs.write_encrypted` (no transaction),
`commit_upload` (one short transaction: version row + audit event). If the commit fails,
the caller deletes the stored object; if the write fails, nothing was recorded.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import anyio
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, crypto, holds, thumbnail_jobs
from vault.audit.actions import AuditAction
from vault.crypto import blobs
from vault.crypto.blobs import StoredBlob
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import ConflictError, NotFoundError
from vault.folders import free_sibling_name, get_folder, siblings_like
from vault.models import Document, Version
from vault.names import (
    check_distinct,
    guess_content_type,
    name_key,
    validate_name,
)
from vault.policy import Permission, Principal, allows, can_see_client, require
from vault.store import ObjectStore


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """Everything fixed before the bytes arrive; the object's header binds these ids."""

    client_id: uuid.UUID
    folder_id: uuid.UUID
    document_id: uuid.UUID
    version_id: uuid.UUID
    name: str
    is_new: bool
    storage_key: str
    kek_id: str
    wrapped_dek: bytes
    dek: bytes

    @property
    def context(self) -> crypto.ObjectContext:
        return crypto.ObjectContext(self.client_id, self.document_id, self.version_id)

    def sealer(self) -> crypto.SegmentSealer:
        return crypto.SegmentSealer(self.dek, self.context)


def storage_key(client_id: uuid.UUID, version_id: uuid.UUID) -> str:
    # Keys come from ids, never from user-supplied names (ASVS 5.3.2).
    return f"objects/{client_id}/{version_id}"


async def live_document(
    session: AsyncSession, *, folder_id: uuid.UUID, name: str
) -> Document | None:
    return (
        await session.execute(
            select(Document).where(
                Document.folder_id == folder_id,
                Document.name_key == name_key(name),
                Document.deleted_at.is_(None),  # type: ignore[union-attr]
            )
        )
    ).scalar_one_or_none()


async def prepare_upload(
    session: AsyncSession,
    principal: Principal,
    keyring: Keyring,
    *,
    folder_id: uuid.UUID,
    name: str,
    new_document: bool = False,
    reserved: Collection[str] = (),
) -> UploadPlan:
    """Authorise an upload of `name` into a folder and fix its ids and data key.

    The same name (any case) is the next version of that document, and a new name beside a
    look-alike is refused. With `new_document` (a drop through an upload-request link) the
    upload never joins what is there: it becomes a new document under `names.free_name`
    (`plan (2).txt`), avoiding also the `reserved` names (uploads still under way), so the
    answer is the same whichever names exist.
    """
    folder = await get_folder(session, principal, folder_id)
    require(principal, Permission.UPLOAD, folder.client_id)
    name = validate_name(name)
    existing = None
    if new_document:
        name = await free_sibling_name(
            session, client_id=folder.client_id, parent_id=folder.id, name=name, reserved=reserved
        )
    else:
        existing = await live_document(session, folder_id=folder.id, name=name)
        if existing is None:
            # A new name beside a look-alike is refused (review item 11, TR39 skeletons).
            near = await siblings_like(
                session, client_id=folder.client_id, parent_id=folder.id, name=name
            )
            check_distinct(name, [other for _, other in near])
    version_id = uuid.uuid4()
    dek = crypto.new_data_key()
    kek_id, wrapped = keyring.wrap(dek)
    return UploadPlan(
        client_id=folder.client_id,
        folder_id=folder.id,
        document_id=existing.id if existing else uuid.uuid4(),
        version_id=version_id,
        name=name,
        is_new=existing is None,
        storage_key=storage_key(folder.client_id, version_id),
        kek_id=kek_id,
        wrapped_dek=wrapped,
        dek=dek,
    )


async def commit_upload(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    plan: UploadPlan,
    blob: StoredBlob,
    *,
    content_type: str | None = None,
    details: dict[str, object] | None = None,
) -> tuple[Document, Version]:
    """Record the stored object as the next version, with its audit event, atomically."""
    folder = await get_folder(session, principal, plan.folder_id)
    require(principal, Permission.UPLOAD, folder.client_id)
    return await record_version(
        session,
        context,
        plan,
        blob,
        content_type=content_type or guess_content_type(plan.name),
        uploaded_by=principal.user_ref,
        details=details,
    )


class PlannedVersion(Protocol):
    """The ids and wrapped key a version is recorded under (an `UploadPlan`, or a version
    held in quarantine until its scan passed)."""

    @property
    def client_id(self) -> uuid.UUID: ...
    @property
    def folder_id(self) -> uuid.UUID: ...
    @property
    def document_id(self) -> uuid.UUID: ...
    @property
    def version_id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def is_new(self) -> bool: ...
    @property
    def kek_id(self) -> str: ...
    @property
    def wrapped_dek(self) -> bytes: ...


async def record_version(
    session: AsyncSession,
    context: audit.AuditContext,
    plan: PlannedVersion,
    blob: StoredBlob,
    *,
    content_type: str,
    uploaded_by: uuid.UUID | None,
    details: dict[str, object] | None = None,
) -> tuple[Document, Version]:
    """Make an authorised, stored object the document's next version, with its audit event.

    Raises:
        ConflictError: the document was deleted, or another document took its new name.
    """
    now = datetime.now(UTC)
    if plan.is_new:
        document = Document(
            id=plan.document_id,
            client_id=plan.client_id,
            folder_id=plan.folder_id,
            name=plan.name,
            name_key=name_key(plan.name),
            current_version=0,
            created_at=now,
        )
        session.add(document)
        try:
            async with session.begin_nested():
                await session.flush()
        except DBIntegrityError as exc:
            raise ConflictError(
                f"another upload created {plan.name!r} in this folder meanwhile; upload again"
            ) from exc
    else:
        found = (
            await session.execute(
                select(Document).where(Document.id == plan.document_id).with_for_update()
            )
        ).scalar_one_or_none()
        if found is None or found.deleted_at is not None:
            raise ConflictError(f"{plan.name!r} was deleted during the upload; upload again")
        document = found
    document.current_version += 1
    document.updated_at = now
    version = Version(
        id=plan.version_id,
        document_id=document.id,
        number=document.current_version,
        size=blob.plaintext_size,
        sha256=blob.sha256,
        content_type=content_type,
        uploaded_by=uploaded_by,
        created_at=now,
        storage_key=blob.key,
        object_size=blob.object_size,
        kek_id=plan.kek_id,
        wrapped_dek=plan.wrapped_dek,
        header=blob.header,
    )
    session.add(document)
    session.add(version)
    await session.flush()
    # Every path that stores a version comes through here: its thumbnail is drawn ahead.
    thumbnail_jobs.enqueue(session, version)
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_CREATED if plan.is_new else AuditAction.DOCUMENT_VERSION_ADDED,
        client_id=document.client_id,
        target_type="document",
        target_id=document.id,
        document_id=document.id,
        details={
            "name": document.name,
            "folder_id": str(document.folder_id),
            "version": version.number,
            "size": version.size,
            "sha256": version.sha256,
            **(details or {}),
        },
    )
    return document, version


async def get_document(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    *,
    include_deleted: bool = False,
) -> Document:
    document = await session.get(Document, document_id)
    # One message for "missing", "trashed" and "another client's": the answer must not tell
    # them apart.
    if (
        document is None
        or (document.deleted_at is not None and not include_deleted)
        or not can_see_client(principal, document.client_id)
    ):
        raise NotFoundError("document not found")
    require(principal, Permission.VIEW, document.client_id)
    return document


async def versions(session: AsyncSession, document_id: uuid.UUID) -> Sequence[Version]:
    return (
        (
            await session.execute(
                select(Version)
                .where(Version.document_id == document_id)
                .order_by(col(Version.number))
            )
        )
        .scalars()
        .all()
    )


async def get_version(session: AsyncSession, document: Document, number: int | None) -> Version:
    wanted = document.current_version if number is None else number
    version = (
        await session.execute(
            select(Version).where(Version.document_id == document.id, Version.number == wanted)
        )
    ).scalar_one_or_none()
    if version is None:
        raise NotFoundError("version not found")
    return version


def open_version(keyring: Keyring, document: Document, version: Version) -> crypto.OpenedHeader:
    """Unwrap the data key and check the stored header against the row's ids."""
    dek = keyring.unwrap(version.kek_id, version.wrapped_dek)
    expected = crypto.ObjectContext(document.client_id, document.id, version.id)
    return crypto.parse_header(version.header, expected, dek)


async def trash(
    session: AsyncSession, principal: Principal, context: audit.AuditContext, document_id: uuid.UUID
) -> Document:
    document = await get_document(session, principal, document_id)
    require(principal, Permission.DELETE, document.client_id)
    await holds.refuse_if_held(session, document.client_id, document.folder_id)
    document.deleted_at = datetime.now(UTC)
    document.deleted_by = principal.user_ref
    session.add(document)
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_DELETED,
        client_id=document.client_id,
        target_type="document",
        target_id=document.id,
        document_id=document.id,
        details={"name": document.name, "folder_id": str(document.folder_id)},
    )
    return document


def may_manage(principal: Principal, client_id: uuid.UUID) -> bool:
    """Whether the caller looks after this client's documents (trash, delivery receipts).

    Asked for reads too, so a read-only token lists what its user could act on.
    """
    return allows(dataclasses.replace(principal, read_only=False), Permission.DELETE, client_id)


@dataclass(frozen=True, slots=True)
class RestoreSource:
    """The old version whose bytes become the new one, opened for reading."""

    number: int
    storage_key: str
    object_size: int
    content_type: str
    opened: crypto.OpenedHeader


async def restore_version(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    principal: Principal,
    context: audit.AuditContext,
    *,
    document_id: uuid.UUID,
    number: int,
    part_size: int,
    concurrency: int = 4,
) -> tuple[Document, Version]:
    """Make an old version current again, as a new version with the same bytes.

    The old object is decrypted and re-encrypted as it streams (memory bounded by the part
    size), under a fresh version id and data key: reusing the old object would bind two
    versions to one header, and a data key must never seal two objects. Like an upload it
    runs in three steps, with no transaction held while bytes move, and is recorded as
    `document.version_added` with `restored_from`, so it is notified as a new version.
    """
    async with transaction(sessions) as session:
        document = await get_document(session, principal, document_id)
        require(principal, Permission.DOWNLOAD, document.client_id)
        old = await get_version(session, document, number)
        if old.number == document.current_version:
            raise ConflictError("this version is already the current one")
        source = RestoreSource(
            old.number,
            old.storage_key,
            old.object_size,
            old.content_type,
            open_version(keyring, document, old),
        )
        plan = await prepare_upload(
            session, principal, keyring, folder_id=document.folder_id, name=document.name
        )
        if plan.document_id != document.id:
            raise ConflictError("the document was replaced meanwhile; reload and try again")
    blob = await blobs.write_encrypted(
        store,
        plan.storage_key,
        blobs.read_decrypted(
            store, source.storage_key, opened=source.opened, object_size=source.object_size
        ),
        sealer=plan.sealer(),
        part_size=part_size,
        concurrency=concurrency,
        expected_size=crypto.plaintext_size(source.object_size),
    )
    try:
        async with transaction(sessions) as session:
            return await commit_upload(
                session,
                principal,
                context,
                plan,
                blob,
                content_type=source.content_type,
                details={"restored_from": source.number},
            )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.delete(plan.storage_key)
        raise


# Access events: one definition each, whichever way (API, pages, archive) the content left.


async def _access(
    session: AsyncSession,
    context: audit.AuditContext,
    action: AuditAction,
    document: Document,
    details: dict[str, object] | None = None,
) -> None:
    await audit.record(
        session,
        context,
        action,
        client_id=document.client_id,
        target_type="document",
        target_id=document.id,
        document_id=document.id,
        details=details,
    )


async def record_view(
    session: AsyncSession, context: audit.AuditContext, document: Document
) -> None:
    """Audit that a document's details (name, versions) were shown to someone."""
    await _access(session, context, AuditAction.DOCUMENT_VIEWED, document)


async def record_download(
    session: AsyncSession,
    context: audit.AuditContext,
    document: Document,
    *,
    version: int,
    range_: str | None,
    size: int,
    inline: bool = False,
    archive_folder_id: uuid.UUID | None = None,
) -> None:
    """Audit that `size` bytes of a version went out: `range_` is the byte range asked for,
    `inline` a preview, `archive_folder_id` the folder whose archive carried it."""
    details: dict[str, object] = {"version": version, "range": range_, "bytes": size}
    if inline:
        details["disposition"] = "inline"
    if archive_folder_id is not None:
        details |= {"via": "zip", "folder_id": str(archive_folder_id)}
    await _access(session, context, AuditAction.DOCUMENT_DOWNLOADED, document, details)


async def record_integrity_failure(
    session: AsyncSession,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    document_id: uuid.UUID,
    version: int,
) -> None:
    """Audit that a version's stored bytes failed their check while being served."""
    await audit.record(
        session,
        context,
        AuditAction.DOCUMENT_INTEGRITY_FAILED,
        outcome="error",
        client_id=client_id,
        target_type="document",
        target_id=document_id,
        document_id=document_id,
        details={"version": version},
    )
