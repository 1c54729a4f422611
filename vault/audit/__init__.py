"""The audit log, its only writer: the hash chain (`chain`), the vocabulary of actions
(`actions`), the labels hashed into each event (`labels`), the RFC 9162 Merkle tree
(`merkle`, `tree`), signed checkpoints (`notes`, `checkpoints`), searches and exports
(`query`, `views`, `export`, `export_check`) and the alert rules (`alerts`). The names below
are the chain's surface, which the rest of the code records through."""

from __future__ import annotations

from vault.audit.chain import (
    FORMAT_VERSION,
    GENESIS,
    LABEL_FIELDS,
    SYSTEM,
    AuditContext,
    Verification,
    append,
    canonical,
    entry,
    iter_events,
    leaf_hash,
    observe_appends,
    record,
    timestamp,
    verify,
)

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "LABEL_FIELDS",
    "SYSTEM",
    "AuditContext",
    "Verification",
    "append",
    "canonical",
    "entry",
    "iter_events",
    "leaf_hash",
    "observe_appends",
    "record",
    "timestamp",
    "verify",
]
