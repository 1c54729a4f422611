"""Finishing a resumable upload: assemble its stored parts, prove the object holds what was
sealed (by the store's per-part evidence, or by reading it back), and commit the document
version, exactly once across processes.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, crypto, quarantine
from vault.audit.actions import AuditAction
from vault.crypto import blobs
from vault.crypto.digests import RunningDigests
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import ConflictError, IntegrityError, VaultError
from vault.policy import Principal
from vault.store import ObjectStore
from vault.uploads.budget import Budget, Share
from vault.uploads.resumable import (
    Resumable,
    StagedRun,
    Upload,
    UploadPart,
    UploadState,
    delete_rows,
    discard,
    lease_held,
    locked,
    part_count,
)

logger = logging.getLogger(__name__)

# A finisher holds the upload for this long and renews the hold while it works; a process
# that dies mid-finish lets another take over once the hold lapses.
FINISH_LEASE = timedelta(seconds=60)
_RENEW_EVERY = 15.0
_WAIT_POLL = 0.25
# What each span of the finisher's read-back takes from the uploads' budget for the store
# windows it reads into (at most 8 MiB from S3, and from disk two windows of 4 MiB, the one
# read ahead included, web/services.py); and the plaintext buffer each span decrypts into, a
# piece at a time.
_READ_BACK_WINDOW = 8 << 20
_SCRATCH = 256 << 10


@dataclass(frozen=True, slots=True)
class Finished:
    """The version an upload became (0 and `held` while it waits in quarantine)."""

    document_id: uuid.UUID
    version: int
    held: bool = False

    @classmethod
    def of(cls, upload: Upload) -> Finished:
        """What a completed upload became."""
        number = upload.version_number
        return cls(upload.document_id, number or 0, held=number is None)


# Told (in the committing transaction) which upload became what.
OnCommit = Callable[[AsyncSession, uuid.UUID, quarantine.Committed], Awaitable[None]]


class _LeaseLost(VaultError):
    """Another process took over finishing after this one's hold lapsed."""


def _hold(upload: Upload, now: datetime) -> None:
    upload.lease_until = now + FINISH_LEASE
    # An upload being finished must not expire under its finisher.
    upload.expires_at = max(upload.expires_at, upload.lease_until)


async def _take_over(
    sessions: async_sessionmaker[AsyncSession], upload_id: uuid.UUID, token: str
) -> Finished | tuple[Upload, dict[int, str]] | None:
    """The finished version, the upload now held by `token` with the etag recorded for each
    of its parts, or None while another holds it."""
    async with transaction(sessions) as session:
        upload = await locked(session, upload_id)
        if upload.state == UploadState.COMPLETE:
            return Finished.of(upload)
        now = datetime.now(UTC)
        if upload.state == UploadState.FINISHING and lease_held(upload, now):
            return None
        count = part_count(upload.upload_length, upload.part_size)
        rows = await session.execute(
            select(UploadPart.number, UploadPart.etag).where(
                UploadPart.upload_id == upload_id, col(UploadPart.etag).is_not(None)
            )
        )
        recorded = {row.number: str(row.etag) for row in rows}
        if set(recorded) != set(range(1, count + 1)):
            raise ConflictError("the upload is missing parts; continue it before finishing")
        upload.state = UploadState.FINISHING
        upload.claim = token
        _hold(upload, now)
        session.add(upload)
        return upload, recorded


async def _renew(
    sessions: async_sessionmaker[AsyncSession], upload_id: uuid.UUID, token: str
) -> None:
    async with transaction(sessions) as session:
        upload = await locked(session, upload_id)
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
    recorded: dict[int, str],
    known_sha256: str | None = None,
    budget: Budget | None = None,
) -> blobs.StoredBlob:
    """Join the parts into the object (once), then prove it holds what was sealed (and hash
    its plaintext, unless `known_sha256` came from the process that saw every part).

    The proof is a full read-back through decryption, which authenticates every segment,
    unless cheaper evidence covers every part: the plaintext digest is known (this process
    claimed and sealed every part itself, so their segments were authenticated as they were
    made), and the store pins each part to the bytes its `upload_part` call delivered
    (`ObjectStore.etags_pin_parts`: checked on receipt, and listed now under the etag that
    call returned and recorded). An upload of one part has no multipart upload: its object
    was stored whole by `put_new`, and is pinned alike by the etag that call returned. Where
    either is missing, the object is read back.
    """
    key = upload.plan.storage_key
    size = crypto.object_size(upload.length)
    pins = known_sha256 is not None and store.etags_pin_parts
    pinned = False
    if not upload.multipart_id:
        # Stored whole, with one PUT, by the request that completed its only part.
        whole = await store.head(key)
        found: int | None = whole.size
        pinned = pins and recorded.get(1) == whole.etag
    else:
        found = await _assembled_size(store, key)
    if found is None:
        count = part_count(upload.length, upload.part_size)
        # The store's own etags: a part stored twice by racing requests holds the same bytes,
        # but only the store knows which upload of it is current.
        parts = await store.list_parts(key, upload.multipart_id)
        if [p.part_number for p in parts] != list(range(1, count + 1)):
            raise IntegrityError(f"the store holds parts {[p.part_number for p in parts]}")
        # Recorded when this finisher took the upload over: a part stored again since then
        # is listed under another etag, so it is read back.
        pinned = pins and (
            sum(p.size for p in parts) == size
            and all(recorded.get(p.part_number) == p.etag for p in parts)
        )
        await store.complete_multipart(
            key, upload.multipart_id, [(p.part_number, p.etag) for p in parts]
        )
        found = (await store.head(key)).size if pinned else size
    if found != size:
        raise IntegrityError(f"the assembled object is {found} bytes, not {size}")
    if pinned and known_sha256 is not None:
        plaintext, digest = upload.length, known_sha256
    else:
        plaintext, digest = await _read_back(
            sessions, store, upload, token, known=known_sha256, budget=budget
        )
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
    budget: Budget | None,
) -> tuple[int, str]:
    """Authenticate every segment of the assembled object, and hash its plaintext unless
    the digest is `known`: (plaintext bytes, hex SHA-256).

    Each store window is decrypted in a worker thread, into one reused buffer, and given
    back before the next is asked for, so that the store reads the next into the same
    memory. With nothing to hash in order, the two halves of the object are read at once.
    Each span takes 8 MiB from `budget` (the uploads' budget of the process) for its window
    before it reads, and holds it to its end.
    """
    size, length = crypto.object_size(upload.length), upload.length
    digest = hashlib.sha256()
    if length == 0:
        return 0, digest.hexdigest()
    opened = crypto.parse_header(upload.header, upload.plan.context, upload.plan.dek)
    segment = opened.segment_size
    middle = (length // 2) // segment * segment
    # In halves only past one window: a shorter object is one GET anyway.
    halves = known is not None and length > _READ_BACK_WINDOW
    spans = [(0, middle), (middle, length)] if halves else [(0, length)]
    renewed = [time.monotonic()]
    counted: list[int] = []

    async def verify(plain_start: int, plain_end: int) -> None:
        _, start, end = crypto.ciphertext_range(plain_start, plain_end, size)
        decryptor = crypto.RangeDecryptor(
            opened, plain_start=plain_start, plain_end=plain_end, object_size=size
        )

        def consume(box: list[crypto.Chunk], scratch: bytearray) -> int:
            count = 0
            # A verifying read keeps no plaintext: every piece goes into the one buffer.
            for piece in decryptor.pieces(box, reuse=scratch):
                if known is None:
                    digest.update(piece)
                count += len(piece)
            return count

        # The span's window buffers are reused window after window, so they are resident
        # until the span ends: their share of the budget is taken before the first read, and
        # held.
        share = Share(budget, _READ_BACK_WINDOW)
        await share.take()
        try:
            scratch = bytearray(_SCRATCH)
            async for window in store.read(upload.plan.storage_key, start, end):
                # In a box that the worker empties: once it is decrypted no view of the
                # window is left, and the store reads the next one into the same buffer.
                box: list[crypto.Chunk] = [window]
                del window
                counted.append(await anyio.to_thread.run_sync(consume, box, scratch))
                if time.monotonic() - renewed[0] > _RENEW_EVERY:
                    renewed[0] = time.monotonic()
                    await _renew(sessions, upload.id, token)
        finally:
            share.give_all()
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
    budget: Budget | None = None,
    hold: bool = False,
    on_commit: OnCommit | None = None,
    details: dict[str, object] | None = None,
) -> Finished:
    """Turn a fully stored upload into its document version (or, with `hold`, a version
    held in quarantine until scanned), exactly once.

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
            resumable, recorded = Resumable.of(taken[0], keyring), taken[1]
            break
        await anyio.sleep(_WAIT_POLL)
    try:
        known = None
        if digests is not None:
            known = digests.take(upload_id, part_count(resumable.length, resumable.part_size))
        blob = await _assemble(
            sessions, store, resumable, token, recorded=recorded, known_sha256=known, budget=budget
        )
        async with transaction(sessions) as session:
            row = await locked(session, upload_id)
            if row.claim != token:
                raise _LeaseLost("another process is finishing this upload")
            committed = await quarantine.commit_or_hold(
                session,
                principal,
                context,
                resumable.plan,
                blob,
                hold=hold,
                content_type=resumable.content_type,
                details={"upload_id": str(upload_id), **(details or {})},
            )
            if on_commit is not None:
                # In the same transaction: what the caller records commits with the version.
                await on_commit(session, upload_id, committed)
            # The final part's staged segments are in the stored object now.
            await session.execute(delete(StagedRun).where(col(StagedRun.upload_id) == upload_id))
            row.state = UploadState.COMPLETE
            row.version_number = committed.version
            row.claim = None
            row.lease_until = None
            row.updated_at = datetime.now(UTC)
            session.add(row)
        return Finished(committed.document_id, committed.version or 0, held=committed.held)
    except _LeaseLost:
        # Whoever holds it now finishes; wait for their answer like any other caller.
        return await finish(
            sessions,
            store,
            keyring,
            principal,
            context,
            upload_id,
            digests=digests,
            budget=budget,
            hold=hold,
            on_commit=on_commit,
            details=details,
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
            upload = await locked(session, upload_id)
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
            upload = await locked(session, upload_id)
            if upload.claim != token:
                return
            await delete_rows(session, upload)
            await audit.record(
                session,
                context,
                AuditAction.UPLOAD_FAILED,
                outcome="error",
                client_id=upload.client_id,
                target_type="upload",
                target_id=upload.id,
                details={"name": upload.name, "reason": "the document changed during the upload"},
            )
        await discard(store, upload)
    except Exception:
        logger.warning("could not discard upload %s", upload_id, exc_info=True)
