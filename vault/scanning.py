"""The scan worker: takes pending versions out of quarantine one at a time, streams their
decrypted bytes to the scanner, and records the verdict (publishing what passed).

Any number of workers may run (one per app process, or `clientvault scan run`): a worker
holds a row by a claim and a deadline in it, so a row is scanned by one of them at a time,
and a worker that dies lets another take the row over when the deadline passes. When the
scanner is down, rows stay pending and are tried again after a pause.

An infected version that the policy deletes is kept instead while a legal hold covers its
folder: it stays in quarantine, infected and never served, for staff to delete once the hold
is released.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import anyio
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, crypto, holds
from vault.audit.actions import AuditAction
from vault.clamd import Verdict
from vault.crypto import blobs
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import ConflictError, IntegrityError, ScannerUnavailableError
from vault.quarantine import locked, mark_deleted, publish
from vault.quarantine_tables import HeldVersion, ScanState
from vault.records import lock_client
from vault.store import ObjectStore

logger = logging.getLogger(__name__)


class Scanner(Protocol):
    async def scan(self, chunks: AsyncIterable[bytes | memoryview]) -> Verdict: ...


class Unscanned(StrEnum):
    """What happens to a version no scanner can pass (too large, or no scanner)."""

    PUBLISH = "publish"
    HOLD = "hold"


class Infected(StrEnum):
    """What happens to an infected version: kept encrypted for staff, or deleted."""

    KEEP = "keep"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    scanner: Scanner | None
    max_bytes: int
    unscanned: Unscanned = Unscanned.HOLD
    infected: Infected = Infected.KEEP
    # How long a worker holds a row, and how long a row waits after the scanner was down.
    lease: timedelta = timedelta(minutes=10)
    retry_after: timedelta = timedelta(seconds=30)


async def _claim(
    sessions: async_sessionmaker[AsyncSession], policy: ScanPolicy, token: str
) -> HeldVersion | None:
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                select(HeldVersion)
                .where(
                    HeldVersion.state == ScanState.PENDING,
                    col(HeldVersion.deleted_at).is_(None),
                    col(HeldVersion.published_version).is_(None),
                    or_(col(HeldVersion.not_before).is_(None), col(HeldVersion.not_before) < now),
                )
                .order_by(col(HeldVersion.created_at))
                .limit(1)
                # PostgreSQL: workers on other nodes skip the row this one holds.
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if row is None:
            return None
        row.claim = token
        row.not_before = now + policy.lease
        row.attempts += 1
        session.add(row)
        return row


async def _chunks(
    store: ObjectStore, keyring: Keyring, row: HeldVersion
) -> AsyncIterable[bytes | memoryview]:
    if row.kek_id is None or row.wrapped_dek is None or row.header is None:
        raise IntegrityError("the held version's data key is gone")
    opened = crypto.parse_header(
        row.header,
        crypto.ObjectContext(row.client_id, row.document_id, row.version_id),
        keyring.unwrap(row.kek_id, row.wrapped_dek),
    )
    async for chunk in blobs.read_decrypted(
        store, row.storage_key, opened=opened, object_size=row.object_size
    ):
        yield chunk


async def _verdict(
    store: ObjectStore, keyring: Keyring, policy: ScanPolicy, row: HeldVersion
) -> tuple[ScanState, Verdict | None, str | None]:
    if policy.scanner is None:
        return ScanState.NOT_SCANNED, None, "no scanner is configured"
    if row.size > policy.max_bytes:
        return ScanState.NOT_SCANNED, None, f"larger than the scanner's {policy.max_bytes} bytes"
    verdict = await policy.scanner.scan(_chunks(store, keyring, row))
    return (ScanState.CLEAN if verdict.clean else ScanState.INFECTED), verdict, None


async def scan_one(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    policy: ScanPolicy,
) -> bool:
    """Scan the oldest pending version, if any; whether there was one.

    Raises:
        ScannerUnavailableError: the scanner is down; the version stays pending and waits
            `policy.retry_after` before it is tried again.
    """
    token = str(uuid.uuid4())
    row = await _claim(sessions, policy, token)
    if row is None:
        return False
    try:
        state, verdict, reason = await _verdict(store, keyring, policy, row)
    except ScannerUnavailableError:
        with anyio.CancelScope(shield=True):
            await _put_back(sessions, row.version_id, token, policy.retry_after)
        raise
    except IntegrityError as exc:
        # A tampered object is never published; staff see why it is held.
        state, verdict, reason = ScanState.NOT_SCANNED, None, f"the object is damaged: {exc}"
        policy = ScanPolicy(None, policy.max_bytes, Unscanned.HOLD, policy.infected)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _put_back(sessions, row.version_id, token, policy.retry_after)
        raise
    signature = verdict.signature if verdict else None
    try:
        deleted = await _record(sessions, row.version_id, token, policy, state, signature, reason)
    except ConflictError as exc:
        await _record(sessions, row.version_id, token, policy, state, signature, str(exc), False)
        return True
    if deleted is not None:
        try:
            await store.delete(deleted)
        except Exception:
            # fsck reports the object as an orphan; nothing refers to it any more.
            logger.warning("could not delete infected object of %s", row.version_id)
    return True


async def _put_back(
    sessions: async_sessionmaker[AsyncSession],
    version_id: uuid.UUID,
    token: str,
    wait: timedelta,
) -> None:
    async with transaction(sessions) as session:
        row = await locked(session, version_id)
        if row is not None and row.claim == token:
            row.claim = None
            row.not_before = datetime.now(UTC) + wait
            session.add(row)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    version_id: uuid.UUID,
    token: str,
    policy: ScanPolicy,
    state: ScanState,
    signature: str | None,
    reason: str | None,
    may_publish: bool = True,
) -> str | None:
    """Record the verdict, its audit event and what the policy does with it, in one
    transaction; the object key to delete from the store afterwards, if any."""
    async with transaction(sessions) as session:
        row = await locked(session, version_id)
        if row is None or row.claim != token or not row.held:
            return None  # another worker took over, or staff decided meanwhile
        deleting = state == ScanState.INFECTED and policy.infected == Infected.DELETE
        kept_by = None
        if deleting and may_publish:
            # The client's lock, as for every deletion: a hold placed meanwhile is seen.
            await lock_client(session, row.client_id)
            kept_by = (await holds.holds_of(session, row.client_id)).covering(row.folder_id)
            if kept_by is not None:
                reason = "kept: a legal hold is in place here"
        row.state = state
        row.signature = signature
        row.reason = reason
        row.claim = None
        row.not_before = None
        row.scanned_at = datetime.now(UTC)
        session.add(row)
        await audit.record(
            session,
            audit.SYSTEM,
            AuditAction.QUARANTINE_SCANNED,
            # An infected upload is a refused one: searches for refusals find it.
            outcome="denied" if state == ScanState.INFECTED else "success",
            client_id=row.client_id,
            target_type="version",
            target_id=row.version_id,
            document_id=row.document_id,
            details={
                "name": row.name,
                "folder_id": str(row.folder_id),
                "version_id": str(row.version_id),
                "state": state.value,
                "signature": signature,
                "reason": reason,
            },
        )
        if not may_publish:
            return None
        if state == ScanState.CLEAN or (
            state == ScanState.NOT_SCANNED and policy.unscanned == Unscanned.PUBLISH
        ):
            await publish(session, audit.SYSTEM, row)
        elif deleting and kept_by is None:
            await mark_deleted(session, row, by=None)
            await audit.record(
                session,
                audit.SYSTEM,
                AuditAction.QUARANTINE_DELETED,
                client_id=row.client_id,
                target_type="version",
                target_id=row.version_id,
                document_id=row.document_id,
                details={"name": row.name, "signature": signature, "by_policy": True},
            )
            return row.storage_key
        return None


async def run(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    keyring: Keyring,
    policy: ScanPolicy,
    *,
    interval: float = 5.0,
    once: bool = False,
) -> None:
    """Scan pending versions until cancelled (or, with `once`, until none is left that can
    be scanned now)."""
    while True:
        try:
            while await scan_one(sessions, store, keyring, policy):
                pass
        except ScannerUnavailableError as exc:
            logger.warning("scanner unavailable, versions stay pending: %s", exc)
            if once:
                return
        except Exception:
            logger.exception("scan worker failed; retrying")
        if once:
            return
        await anyio.sleep(interval)
