"""Reads and checks of the audit log, each itself an audit event: searches, exports, chain
verifications, checkpoints and proofs. The log records who looked at it as it records
everything else."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from vault.audit import chain as audit
from vault.audit.actions import AuditAction


async def record_search(
    session: AsyncSession, context: audit.AuditContext, filters: Mapping[str, str]
) -> None:
    """Someone read events matching `filters` (the filters set, by name)."""
    await audit.record(session, context, AuditAction.AUDIT_VIEWED, details={"filters": filters})


async def record_export(
    session: AsyncSession, context: audit.AuditContext, *, fmt: str, filters: Mapping[str, str]
) -> None:
    """Someone exported the events matching `filters` as `fmt`; recorded before any byte
    leaves, so the export covers its own event."""
    await audit.record(
        session, context, AuditAction.AUDIT_EXPORTED, details={"format": fmt, "filters": filters}
    )


async def record_verify_asked(session: AsyncSession, context: audit.AuditContext) -> None:
    """Someone asked for the chain to be verified (the answer goes to them alone)."""
    await audit.record(session, context, AuditAction.AUDIT_VERIFIED)


async def record_verified(
    session: AsyncSession, context: audit.AuditContext, result: audit.Verification
) -> None:
    """Someone verified the chain, and what they found."""
    await audit.record(
        session,
        context,
        AuditAction.AUDIT_VERIFIED,
        outcome="success" if result.ok else "error",
        details={"ok": result.ok, "events": result.events},
    )


async def record_checkpoint_viewed(session: AsyncSession, context: audit.AuditContext) -> None:
    await audit.record(session, context, AuditAction.AUDIT_CHECKPOINT_VIEWED)


async def record_inclusion_proof(
    session: AsyncSession, context: audit.AuditContext, *, seq: int, tree_size: int
) -> None:
    """Someone was given the proof that event `seq` is in the tree of `tree_size` events."""
    await audit.record(
        session,
        context,
        AuditAction.AUDIT_PROOF_VIEWED,
        details={"proof": "inclusion", "seq": seq, "tree_size": tree_size},
    )


async def record_consistency_proof(
    session: AsyncSession, context: audit.AuditContext, *, first: int, second: int
) -> None:
    """Someone was given the proof that the tree of `second` events extends that of `first`."""
    await audit.record(
        session,
        context,
        AuditAction.AUDIT_PROOF_VIEWED,
        details={"proof": "consistency", "first": first, "second": second},
    )
