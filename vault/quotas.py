"""Storage quotas per client: usage, admission of uploads before their bytes, usage alerts.

A client's usage is the plaintext size of every version of every document, the trash
included, and of every version held in quarantine (stored, not yet published): publishing
one changes nothing, so a version passed by the scanner or released by staff never takes a
client past its quota. Uploads still streaming hold a reservation: a resumable upload by
its row (its `Upload-Length` is fixed at creation), a one-shot or form upload by a
`QuotaReservation`. Admission locks the client's row, so two uploads admitted at once see
each other's bytes and cannot jointly overshoot; the version's commit checks once more
under the same lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, documents
from vault.audit.actions import AuditAction
from vault.db import transaction
from vault.errors import InvalidInput, NotFoundError, QuotaExceededError
from vault.models import Client, Document, Version
from vault.policy import Principal, can_see_client, require_admin
from vault.quarantine_tables import HeldVersion
from vault.records import ClientQuota, QuotaReservation, lock_client
from vault.uploads import Upload, UploadState

# The share of the quota at which the client's staff and users are told, once each.
THRESHOLDS = (80, 90, 100)
# A reservation outlives a crashed upload by this much at most.
RESERVATION_TTL = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Usage:
    """A client's stored bytes, the bytes reserved by uploads in flight, and its quota."""

    stored: int
    reserved: int
    quota: int  # 0: unlimited

    @property
    def percent(self) -> int | None:
        return None if not self.quota else self.stored * 100 // self.quota

    @property
    def room(self) -> int | None:
        """Bytes a new upload may still take; None when unlimited."""
        return None if not self.quota else max(0, self.quota - self.stored - self.reserved)


async def usage_by_client(
    session: AsyncSession, client_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, int]:
    """Stored bytes (every version, trash included, and every held version) of each
    client; all clients if None. A client with nothing stored is present with 0."""
    wanted = None if client_ids is None else list(client_ids)
    query = (
        select(Document.client_id, func.coalesce(func.sum(Version.size), 0))
        .join(Version, col(Version.document_id) == col(Document.id))
        .group_by(col(Document.client_id))
    )
    held = (
        select(HeldVersion.client_id, func.coalesce(func.sum(HeldVersion.size), 0))
        .where(col(HeldVersion.published_version).is_(None), col(HeldVersion.deleted_at).is_(None))
        .group_by(col(HeldVersion.client_id))
    )
    clients = select(Client.id)
    if wanted is not None:
        query = query.where(col(Document.client_id).in_(wanted))
        held = held.where(col(HeldVersion.client_id).in_(wanted))
        clients = clients.where(col(Client.id).in_(wanted))
    found = {row[0]: 0 for row in (await session.execute(clients)).all()}
    for totals in (query, held):
        for client_id, total in (await session.execute(totals)).all():
            found[client_id] = found.get(client_id, 0) + int(total)
    return found


async def client_usage(session: AsyncSession, client_id: uuid.UUID) -> int:
    """Stored bytes of one client: every version of every document, the trash included,
    and every version held in quarantine."""
    return (await usage_by_client(session, [client_id])).get(client_id, 0)


async def reserved_bytes(
    session: AsyncSession, client_id: uuid.UUID, *, now: datetime | None = None
) -> int:
    """Bytes promised to uploads of the client that are still streaming."""
    moment = now or datetime.now(UTC)
    resumable = await session.execute(
        select(func.coalesce(func.sum(Upload.upload_length), 0)).where(
            Upload.client_id == client_id,
            Upload.state != UploadState.COMPLETE,
            col(Upload.expires_at) > moment,
        )
    )
    one_shot = await session.execute(
        select(func.coalesce(func.sum(QuotaReservation.size), 0)).where(
            QuotaReservation.client_id == client_id,
            col(QuotaReservation.expires_at) > moment,
        )
    )
    return int(resumable.scalar_one()) + int(one_shot.scalar_one())


async def quota_of(session: AsyncSession, client_id: uuid.UUID, *, default: int) -> int:
    """The client's quota in bytes (its own, else the firm-wide `default`); 0 is unlimited."""
    row = await session.get(ClientQuota, client_id)
    if row is None or row.quota_bytes is None:
        return default
    return row.quota_bytes


async def usage(session: AsyncSession, client_id: uuid.UUID, *, default: int) -> Usage:
    quota = await quota_of(session, client_id, default=default)
    return await _usage_under(session, client_id, quota)


async def _limited_usage(
    session: AsyncSession, client_id: uuid.UUID, *, default: int
) -> Usage | None:
    """`usage` where the client has a quota; None, and nothing summed, where it has none.

    The sums read every version the client has: an upload admitted and settled against
    them cost a dozen statements, and time that grew with the client's documents, to check
    against no limit."""
    quota = await quota_of(session, client_id, default=default)
    return await _usage_under(session, client_id, quota) if quota else None


async def _usage_under(session: AsyncSession, client_id: uuid.UUID, quota: int) -> Usage:
    return Usage(
        stored=await client_usage(session, client_id),
        reserved=await reserved_bytes(session, client_id),
        quota=quota,
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """What an admitted upload holds: its reservation (if its size was known) and the
    bytes it may still take (None when the client has no quota)."""

    reservation_id: uuid.UUID | None
    room: int | None
    quota: int = 0
    used: int = 0

    def limit(self, max_size: int) -> int:
        """The most bytes the upload may stream: `max_size`, or less if the quota says so."""
        return max_size if self.room is None else min(max_size, self.room)

    def refusal(self) -> QuotaExceededError:
        """The error for an upload of unknown size that streamed past the room it had."""
        return QuotaExceededError(quota=self.quota, used=self.used, requested=None)


async def admit(
    session: AsyncSession,
    client_id: uuid.UUID,
    size: int | None,
    *,
    default: int,
    reserve: bool = True,
) -> Admission:
    """Admit an upload of `size` bytes (None: not known until it has streamed) before any
    byte of it is stored, reserving them unless `reserve` is False (a resumable upload,
    whose row is its reservation, created in this same transaction).

    Raises:
        QuotaExceededError: the bytes already stored and reserved, plus `size`, pass the quota
            (or nothing at all is left for an upload of unknown size).
    """
    await lock_client(session, client_id)
    current = await _limited_usage(session, client_id, default=default)
    if current is None:
        return Admission(None, None)  # no quota: nothing to check, nothing to reserve
    in_use = current.stored + current.reserved
    room = current.room
    if room is not None and (room < (size or 0) or (size is None and room == 0)):
        raise QuotaExceededError(quota=current.quota, used=in_use, requested=size)
    reservation_id = None
    if reserve and size:
        now = datetime.now(UTC)
        reservation = QuotaReservation(
            client_id=client_id, size=size, created_at=now, expires_at=now + RESERVATION_TTL
        )
        session.add(reservation)
        await session.flush()
        reservation_id = reservation.id
    return Admission(reservation_id, room, current.quota, in_use)


async def settle(
    session: AsyncSession,
    client_id: uuid.UUID,
    admission: Admission,
    size: int,
    *,
    default: int,
) -> None:
    """Before the version of `size` bytes is recorded (same transaction): drop its
    reservation and check once more, under the client's lock, that it fits.

    Raises:
        QuotaExceededError: it does not fit (e.g. an upload of unknown size that raced
            another one); the caller deletes the stored object.
    """
    await lock_client(session, client_id)
    if admission.reservation_id is not None:
        await session.execute(
            delete(QuotaReservation).where(col(QuotaReservation.id) == admission.reservation_id)
        )
    current = await _limited_usage(session, client_id, default=default)
    if current is None:
        return
    in_use = current.stored + current.reserved
    if in_use + size > current.quota:
        raise QuotaExceededError(quota=current.quota, used=in_use, requested=size)


async def admit_copy(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    number: int,
    *,
    default: int,
) -> tuple[uuid.UUID, Admission]:
    """Admit a restore, which copies version `number` into a new version of the same size;
    the client's id and the admission (its bytes reserved until `release`).

    Raises:
        NotFoundError: no such document or version for this caller.
        QuotaExceededError: the copy does not fit.
    """
    document = await documents.get_document(session, principal, document_id)
    version = await documents.get_version(session, document, number)
    return document.client_id, await admit(
        session, document.client_id, version.size, default=default
    )


async def release(session: AsyncSession, admission: Admission) -> None:
    """Give back the reservation of an upload that failed or was refused."""
    if admission.reservation_id is not None:
        await session.execute(
            delete(QuotaReservation).where(col(QuotaReservation.id) == admission.reservation_id)
        )


async def release_in(sessions: async_sessionmaker[AsyncSession], admission: Admission) -> None:
    """`release` in a transaction of its own (after the upload's own one failed)."""
    if admission.reservation_id is not None:
        async with transaction(sessions) as session:
            await release(session, admission)


async def note_usage(session: AsyncSession, client_id: uuid.UUID, *, default: int) -> int | None:
    """After usage changed (same transaction): record `quota.threshold` when it first
    reaches 80, 90 or 100 % of the quota, which the notifier emails to the client's staff
    and users; returns the threshold reached, if any. Falling below a threshold re-arms it.
    """
    # Under the client's lock: two uploads crossing a threshold at once alert once.
    await lock_client(session, client_id)
    quota = await quota_of(session, client_id, default=default)
    row = await session.get(ClientQuota, client_id, with_for_update=True)
    # Without a quota no threshold is reached (one reached under a quota since removed is
    # re-armed below), and the versions need no summing.
    stored = await client_usage(session, client_id) if quota else 0
    percent = stored * 100 // quota if quota else 0
    level = max((t for t in THRESHOLDS if percent >= t), default=0)
    alerted = row.alerted_percent if row is not None else 0
    if level == alerted:
        return None
    if row is None:
        row = ClientQuota(client_id=client_id, quota_bytes=None)
    row.alerted_percent = level
    row.updated_at = datetime.now(UTC)
    session.add(row)
    await session.flush()
    if level < alerted:
        return None
    await audit.record(
        session,
        audit.SYSTEM,
        AuditAction.QUOTA_THRESHOLD,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
        details={"percent": level, "used": stored, "quota": quota, "name": f"{level} %"},
    )
    return level


async def set_quota(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    quota_bytes: int | None,
    *,
    default: int,
) -> Usage:
    """Set the client's own quota (None: back to the firm-wide default; 0: unlimited).

    Raises:
        NotFoundError: no such client for this caller.
        PermissionDeniedError: the caller is not an administrator.
    """
    if not can_see_client(principal, client_id) or await session.get(Client, client_id) is None:
        raise NotFoundError("client not found")
    require_admin(principal, "set quotas")
    if quota_bytes is not None and quota_bytes < 0:
        raise InvalidInput(
            "a quota is a number of bytes, 0 for unlimited", field="quota_bytes", rule="range"
        )
    await lock_client(session, client_id)
    row = await session.get(ClientQuota, client_id, with_for_update=True)
    before = row.quota_bytes if row is not None else None
    if row is None:
        row = ClientQuota(client_id=client_id)
    row.quota_bytes = quota_bytes
    row.updated_at = datetime.now(UTC)
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.QUOTA_SET,
        client_id=client_id,
        target_type="client",
        target_id=client_id,
        details={"quota_bytes": quota_bytes, "previous": before},
    )
    await note_usage(session, client_id, default=default)
    return await usage(session, client_id, default=default)
