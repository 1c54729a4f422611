"""Retention policies: what each client and folder keeps, and applying them.

A policy may say: keep the last N versions of each document, keep versions younger than D
days, and empty the trash after T days. A folder inherits each rule it does not set from
the nearest folder above it that does, then from the client's policy; 0 means no limit
(keep everything), overriding what is inherited. A version goes only when no rule set for
it keeps it (neither among the last N nor younger than D days), and a document's current
version never goes. A trashed document goes, with all its versions, T days after it was
trashed. Nothing under a legal hold goes (`vault.holds`).

Deleting a version shreds it: its row, which holds its wrapped data key, is deleted with
every other copy of that key (in a quarantine row, in a finished resumable upload's row)
and with its thumbnail, and committed first, so the object is unreadable from then on, even
from a copy of the store taken earlier; only then is the object deleted. Should that fail,
the object is unreferenced and `clientvault gc` deletes it later. Audit events are never
deleted.

`plan` lists what would go; `apply` deletes exactly the listed items that still qualify,
each in its own transaction that re-checks it under its row lock, so several processes may
apply retention at once: one of them deletes each item, the others skip it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from vault import audit, holds, quarantine, quotas, request_documents, thumbnails
from vault.audit.actions import AuditAction
from vault.db import transaction
from vault.errors import InvalidPolicyError, NotFoundError
from vault.folders import get_client
from vault.models import Client, Document, Folder, Version, VersionReceipt
from vault.policy import Principal, require_admin
from vault.records import CLIENT_SCOPE, RetentionPolicy, lock_client
from vault.request_tables import RequestItem
from vault.store import ObjectStore

MAX_RULE = 100_000  # versions or days; beyond that a rule is a typo


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules in force for a folder; None or 0: no limit."""

    keep_versions: int | None = None
    keep_days: int | None = None
    trash_days: int | None = None

    @property
    def prunes_versions(self) -> bool:
        return bool(self.keep_versions) or bool(self.keep_days)


@dataclass(frozen=True, slots=True)
class Doomed:
    """One thing retention deletes: an old version, or a trashed document whole."""

    kind: str  # "version" or "document"
    client_id: uuid.UUID
    folder_id: uuid.UUID
    document_id: uuid.UUID
    name: str
    version: int | None  # the version number, for kind "version"
    size: int  # plaintext bytes freed
    reason: str  # "keep_versions/keep_days" or "trash_days"

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "client_id": str(self.client_id),
            "folder_id": str(self.folder_id),
            "document_id": str(self.document_id),
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "reason": self.reason,
        }


def _aware(moment: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check(value: int | None, what: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_RULE:
        raise InvalidPolicyError(f"{what} must be between 0 and {MAX_RULE}")
    return value


def effective(
    policies: Mapping[str, RetentionPolicy],
    parents: Mapping[uuid.UUID, uuid.UUID | None],
    folder_id: uuid.UUID | None,
) -> Rules:
    """Each rule from the nearest policy that sets it: the folder, its ancestors, the client."""
    chain = [] if folder_id is None else holds.lineage(parents, folder_id)
    scopes = [str(f) for f in chain] + [CLIENT_SCOPE]
    found: dict[str, int | None] = {"keep_versions": None, "keep_days": None, "trash_days": None}
    for field in found:
        for scope in scopes:
            policy = policies.get(scope)
            value = getattr(policy, field) if policy is not None else None
            if value is not None:
                found[field] = value
                break
    return Rules(**found)


async def policies_of(session: AsyncSession, client_id: uuid.UUID) -> dict[str, RetentionPolicy]:
    rows = await session.execute(
        select(RetentionPolicy).where(RetentionPolicy.client_id == client_id)
    )
    return {policy.scope: policy for policy in rows.scalars().all()}


async def list_policies(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> list[RetentionPolicy]:
    await get_client(session, principal, client_id)
    require_admin(principal, "see retention policies")
    return sorted(
        (await policies_of(session, client_id)).values(),
        key=lambda p: (p.scope != CLIENT_SCOPE, p.scope),
    )


async def set_policy(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    *,
    folder_id: uuid.UUID | None,
    rules: Rules,
) -> RetentionPolicy | None:
    """Set the policy of the client (`folder_id` None) or of one of its folders; a policy
    with no rule set is removed (the folder inherits everything again).

    Raises:
        NotFoundError: no such client (or folder of it) for this caller.
        PermissionDeniedError: the caller is not an administrator.
        InvalidPolicyError: a rule is out of range.
    """
    await get_client(session, principal, client_id)
    require_admin(principal, "set retention policies")
    if folder_id is not None:
        folder = await session.get(Folder, folder_id)
        if folder is None or folder.client_id != client_id:
            raise NotFoundError("folder not found")
    _check(rules.keep_versions, "keep_versions")
    _check(rules.keep_days, "keep_days")
    _check(rules.trash_days, "trash_days")
    scope = CLIENT_SCOPE if folder_id is None else str(folder_id)
    found = await session.execute(
        select(RetentionPolicy)
        .where(RetentionPolicy.client_id == client_id, RetentionPolicy.scope == scope)
        .with_for_update()
    )
    policy = found.scalar_one_or_none()
    empty = rules == Rules()
    if empty and policy is not None:
        await session.delete(policy)
    elif not empty:
        policy = policy or RetentionPolicy(client_id=client_id, scope=scope)
        policy.keep_versions = rules.keep_versions
        policy.keep_days = rules.keep_days
        policy.trash_days = rules.trash_days
        policy.updated_at = datetime.now(UTC)
        policy.updated_by = principal.user_ref
        session.add(policy)
    await session.flush()
    await audit.record(
        session,
        context,
        AuditAction.RETENTION_POLICY_SET,
        client_id=client_id,
        target_type="folder" if folder_id else "client",
        target_id=folder_id or client_id,
        details={
            "folder_id": str(folder_id) if folder_id else None,
            "keep_versions": rules.keep_versions,
            "keep_days": rules.keep_days,
            "trash_days": rules.trash_days,
        },
    )
    return None if empty else policy


def _old_versions(
    versions: Sequence[Version], current: int, rules: Rules, now: datetime
) -> list[Version]:
    """The versions no rule keeps, oldest first; never the current one."""
    if not rules.prunes_versions:
        return []
    newest_first = sorted(versions, key=lambda v: v.number, reverse=True)
    doomed = []
    for rank, version in enumerate(newest_first):
        if version.number == current:
            continue
        kept_by_count = bool(rules.keep_versions) and rank < (rules.keep_versions or 0)
        cutoff = now - timedelta(days=rules.keep_days or 0)
        young = bool(rules.keep_days) and _aware(version.created_at) > cutoff
        # Only the rules that are set keep anything; an unset rule keeps nothing by itself.
        if not kept_by_count and not young:
            doomed.append(version)
    return sorted(doomed, key=lambda v: v.number)


async def _plan_client(session: AsyncSession, client_id: uuid.UUID, now: datetime) -> list[Doomed]:
    policies = await policies_of(session, client_id)
    if not policies:
        return []
    standing = await holds.holds_of(session, client_id)
    parents = await holds.folder_parents(session, client_id)
    documents = (
        (
            await session.execute(
                select(Document)
                .where(Document.client_id == client_id)
                .order_by(col(Document.folder_id), col(Document.name_key), col(Document.id))
            )
        )
        .scalars()
        .all()
    )
    by_document: dict[uuid.UUID, list[Version]] = defaultdict(list)
    rows = await session.execute(
        select(Version)
        .join(Document, col(Document.id) == col(Version.document_id))
        .where(Document.client_id == client_id)
    )
    for version in rows.scalars().all():
        by_document[version.document_id].append(version)
    doomed: list[Doomed] = []
    for document in documents:
        if standing.covering(document.folder_id) is not None:
            continue
        rules = effective(policies, parents, document.folder_id)
        versions = by_document.get(document.id, [])
        if (
            document.deleted_at is not None
            and rules.trash_days
            and _aware(document.deleted_at) <= now - timedelta(days=rules.trash_days)
        ):
            doomed.append(
                Doomed(
                    "document",
                    client_id,
                    document.folder_id,
                    document.id,
                    document.name,
                    None,
                    sum(v.size for v in versions),
                    "trash_days",
                )
            )
            continue
        for version in _old_versions(versions, document.current_version, rules, now):
            doomed.append(
                Doomed(
                    "version",
                    client_id,
                    document.folder_id,
                    document.id,
                    document.name,
                    version.number,
                    version.size,
                    "keep_versions/keep_days",
                )
            )
    return doomed


async def plan(
    session: AsyncSession, *, now: datetime | None = None, client_id: uuid.UUID | None = None
) -> list[Doomed]:
    """Everything retention would delete now (of one client, or of all), in a stable order."""
    moment = now or datetime.now(UTC)
    query = select(Client.id).order_by(col(Client.name_key))
    if client_id is not None:
        query = query.where(Client.id == client_id)
    doomed: list[Doomed] = []
    for (cid,) in (await session.execute(query)).all():
        doomed += await _plan_client(session, cid, moment)
    return doomed


async def _shred_rows(session: AsyncSession, versions: Sequence[Version]) -> list[str]:
    """Delete the versions' rows; returns their thumbnails' storage keys."""
    ids = [v.id for v in versions]
    await session.execute(delete(VersionReceipt).where(col(VersionReceipt.version_id).in_(ids)))
    # A thumbnail shows the content too: its key goes with the version's.
    thumbnail_keys = await thumbnails.forget(session, ids)
    # Copies of the wrapped data key outside the version's row: a quarantine row (the
    # version was held before it was published) and a finished resumable upload's row.
    await quarantine.forget_shredded(session, ids)
    # With those, the version's row holds the last copy of the wrapped data key: once this
    # commits, no copy of the object (a backup, a replica) can be decrypted any more.
    await session.execute(delete(Version).where(col(Version.id).in_(ids)))
    return thumbnail_keys


async def _still_doomed(
    session: AsyncSession, item: Doomed, now: datetime
) -> tuple[Document, list[Version]] | None:
    """The document and the versions to delete, re-checked under their row locks; None if
    the item no longer qualifies (deleted by another process, restored, now on hold)."""
    # The client first, as everywhere: a hold placed meanwhile is seen, or waits for us.
    await lock_client(session, item.client_id)
    document = (
        await session.execute(
            select(Document).where(Document.id == item.document_id).with_for_update()
        )
    ).scalar_one_or_none()
    if document is None:
        return None
    if (await holds.holds_of(session, item.client_id)).covering(document.folder_id) is not None:
        return None
    query = select(Version).where(Version.document_id == document.id).with_for_update()
    versions = list((await session.execute(query)).scalars().all())
    policies = await policies_of(session, item.client_id)
    parents = await holds.folder_parents(session, item.client_id)
    rules = effective(policies, parents, document.folder_id)
    if item.kind == "version":
        # The rules may have changed since the plan: delete only what they still let go.
        old = _old_versions(versions, document.current_version, rules, now)
        doomed = [v for v in old if v.number == item.version]
        return (document, doomed) if doomed else None
    if (
        document.deleted_at is None
        or not rules.trash_days
        or _aware(document.deleted_at) > now - timedelta(days=rules.trash_days)
    ):
        return None
    return document, versions


async def _delete_one(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    item: Doomed,
    now: datetime,
    default_quota: int,
) -> bool:
    async with transaction(sessions) as session:
        found = await _still_doomed(session, item, now)
        if found is None:
            return False
        document, versions = found
        keys = [v.storage_key for v in versions]
        keys += await _shred_rows(session, versions)
        if item.kind == "document":
            # The request keeps its item (name, version number); the document is gone.
            await request_documents.forget_document(session, document.id)
            await session.execute(
                update(RequestItem)
                .where(col(RequestItem.document_id) == document.id)
                .values(document_id=None)
            )
            await session.delete(document)
            await session.flush()
        for version in versions:
            await audit.record(
                session,
                audit.SYSTEM,
                AuditAction.VERSION_SHREDDED,
                client_id=item.client_id,
                target_type="version",
                target_id=version.id,
                document_id=document.id,
                details={
                    "name": document.name,
                    "folder_id": str(document.folder_id),
                    "version": version.number,
                    "size": version.size,
                    "sha256": version.sha256,
                    # The reports' storage history counts it until now from then on.
                    "created_at": audit.timestamp(_aware(version.created_at)),
                    "reason": item.reason,
                },
            )
        if item.kind == "document":
            await audit.record(
                session,
                audit.SYSTEM,
                AuditAction.DOCUMENT_PURGED,
                client_id=item.client_id,
                target_type="document",
                target_id=document.id,
                document_id=document.id,
                details={
                    "name": document.name,
                    "folder_id": str(document.folder_id),
                    "versions": len(versions),
                    "reason": item.reason,
                },
            )
        await quotas.note_usage(session, item.client_id, default=default_quota)
    # Only now, with the key gone for good, the object itself.
    with anyio.CancelScope(shield=True):
        for key in keys:
            await store.delete(key)
    return True


@dataclass(frozen=True, slots=True)
class RetentionRun:
    planned: list[Doomed]
    deleted: list[Doomed]
    dry_run: bool


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    client_id: uuid.UUID | None = None,
    default_quota: int = 0,
    items: Sequence[Doomed] | None = None,
) -> RetentionRun:
    """Delete what `plan` lists (nothing with `dry_run`); what was deleted, in plan order.

    `items` (e.g. from an earlier dry run) replaces the plan: each is deleted only if it
    still qualifies under the policies and holds in force now.
    """
    moment = now or datetime.now(UTC)
    if items is not None:
        planned = list(items)
    else:
        async with transaction(sessions) as session:
            planned = await plan(session, now=moment, client_id=client_id)
    if dry_run:
        return RetentionRun(planned, [], True)
    deleted = [
        item for item in planned if await _delete_one(sessions, store, item, moment, default_quota)
    ]
    if deleted:
        async with transaction(sessions) as session:
            await audit.record(
                session,
                audit.SYSTEM,
                AuditAction.RETENTION_APPLIED,
                details={
                    "versions": sum(1 for d in deleted if d.kind == "version"),
                    "documents": sum(1 for d in deleted if d.kind == "document"),
                    "bytes": sum(d.size for d in deleted),
                },
            )
    return RetentionRun(planned, deleted, False)
