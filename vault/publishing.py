"""Staff publishing: the same report into many clients' folders.

The report is stored once, in the first client's folder, by an ordinary upload. Each
further client gets its own copy, streamed out of the stored object (decrypted segment by
segment) and straight back in under a fresh data key bound to that client's ids, since a
version's key and header belong to one client, one document and one version. Memory stays
bounded by the store's part size whatever the file size; no plaintext is written anywhere.

Each copy is recorded like an upload (`document.created` or `document.version_added`) with
the publishing message in its details, so every client's members hear of it by email.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from vault import audit, crypto, quotas
from vault import documents as doc_service
from vault.crypto import blobs
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import IntegrityError, InvalidMessageError, NotFoundError
from vault.models import Document, Version
from vault.policy import Permission, Principal, require
from vault.store import ObjectStore

MAX_MESSAGE = 2000  # characters of the note that goes into the notification email


def clean_message(value: str) -> str:
    """The publishing message as the email shows it: line breaks kept, ends trimmed."""
    text = value.replace("\r\n", "\n").strip()
    if len(text) > MAX_MESSAGE:
        raise InvalidMessageError("long", f"the message is at most {MAX_MESSAGE} characters")
    # Control characters could forge lines or hide text in the email (header-like spoofing).
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise InvalidMessageError("control", "the message may not contain control characters")
    return text


@dataclass(frozen=True, slots=True)
class PublishedCopy:
    """Where one copy landed."""

    client_id: uuid.UUID
    folder_id: uuid.UUID
    document_id: uuid.UUID
    version: int
    size: int


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A report the publisher sent ahead (by a resumable upload), to be published."""

    document_id: uuid.UUID
    name: str
    version: int
    size: int


async def uploaded_report(
    session: AsyncSession,
    principal: Principal,
    *,
    document_id: uuid.UUID,
    folder_id: uuid.UUID,
) -> Uploaded:
    """The current version of a document the caller uploaded into `folder_id` (the first
    client's publishing folder), to be copied to the other clients.

    Raises:
        NotFoundError: the document is not in that folder, is in the trash, or its current
            version is someone else's: nobody publishes another person's upload this way.
    """
    document = await session.get(Document, document_id)
    if document is None or document.deleted_at is not None or document.folder_id != folder_id:
        raise NotFoundError("document not found")
    require(principal, Permission.UPLOAD, document.client_id)
    version = (
        await session.execute(
            select(Version).where(
                Version.document_id == document.id, Version.number == document.current_version
            )
        )
    ).scalar_one_or_none()
    if version is None or version.uploaded_by != principal.user_ref:
        raise NotFoundError("document not found")
    return Uploaded(document.id, document.name, version.number, version.size)


async def publish_copy(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    principal: Principal,
    context: audit.AuditContext,
    *,
    document_id: uuid.UUID,
    version: int,
    folder_id: uuid.UUID,
    part_size: int,
    concurrency: int = 4,
    message: str = "",
    default_quota: int = 0,
) -> PublishedCopy:
    """Copy one version of a document into `folder_id` (usually another client's) as a new
    document, or a new version of the same-named document there.

    The caller must be allowed to download the source and upload into the target. The copy
    is re-encrypted under a fresh data key; its SHA-256 is checked against the source's.

    Raises:
        NotFoundError: the source, its version or the folder is not visible to the caller.
        IntegrityError: the stored source failed authentication, or the copy differs.
        QuotaExceededError: the copy would take the target client past its quota (checked
            before any byte is stored; `default_quota` is the firm-wide default).
    """
    async with transaction(sessions) as session:
        source = await doc_service.get_document(session, principal, document_id)
        require(principal, Permission.DOWNLOAD, source.client_id)
        source_version = await doc_service.get_version(session, source, version)
        opened = doc_service.open_version(keyring, source, source_version)
        plan = await doc_service.prepare_upload(
            session, principal, keyring, folder_id=folder_id, name=source.name
        )
        admission = await quotas.admit(
            session, plan.client_id, source_version.size, default=default_quota
        )
    try:
        blob = await _copy(store, plan, source_version, opened, part_size, concurrency)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await quotas.release_in(sessions, admission)
        raise
    try:
        if blob.sha256 != source_version.sha256:
            raise IntegrityError("the copy does not match the published document")
        details: dict[str, object] = {"published_from": str(source.id)}
        if message:
            details["message"] = message
        async with transaction(sessions) as session:
            await quotas.settle(
                session, plan.client_id, admission, blob.plaintext_size, default=default_quota
            )
            document, new_version = await doc_service.commit_upload(
                session,
                principal,
                context,
                plan,
                blob,
                content_type=source_version.content_type,
                details=details,
            )
            await quotas.note_usage(session, plan.client_id, default=default_quota)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.delete(plan.storage_key)
            await quotas.release_in(sessions, admission)
        raise
    return PublishedCopy(
        client_id=document.client_id,
        folder_id=document.folder_id,
        document_id=document.id,
        version=new_version.number,
        size=new_version.size,
    )


async def _copy(
    store: ObjectStore,
    plan: doc_service.UploadPlan,
    source_version: Version,
    opened: crypto.OpenedHeader,
    part_size: int,
    concurrency: int,
) -> blobs.StoredBlob:
    return await blobs.write_encrypted(
        store,
        plan.storage_key,
        blobs.read_decrypted(
            store,
            source_version.storage_key,
            opened=opened,
            object_size=source_version.object_size,
        ),
        sealer=plan.sealer(),
        part_size=part_size,
        concurrency=concurrency,
        expected_size=source_version.size,
    )
