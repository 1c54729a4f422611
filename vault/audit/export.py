"""What makes an export checkable offline: its checkpoint, a signed manifest, proofs.

An export covers the log up to a checkpoint of size N written for it (vault/audit/checkpoints.py)
and holds only events with seq <= N. It ends with (JSON Lines) or carries beside it (the
CSV zip) a trailer: the checkpoint note, and a manifest note signed with the same log key
that states the tree size, the filters, how many events were exported and the SHA-256 of
their leaf hashes in order.

- An unfiltered export is the whole tree: a verifier recomputes the root from the events
  and compares it with the checkpoint (RFC 9162 §2.1.1), which proves every event present,
  unaltered and in place, and nothing after N added.
- A filtered export cannot be recomputed into the root without the events it leaves out,
  so each event carries its RFC 9162 §2.1.3 inclusion proof at N (position and content
  proven), and the signed manifest pins which events were exported, so removing, adding
  or reordering rows is detected too. What no proof can show is that the filter itself
  selected every matching event: the portal applied it; `audit verify` and an unfiltered
  export are the checks for that.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vault.audit import notes
from vault.audit.chain import entry
from vault.audit.checkpoints import Signer
from vault.audit.export_check import MANIFEST_HEADER
from vault.audit.labels import Labels, shown
from vault.audit.tree import TreeReader
from vault.models import AuditEvent


def _compact(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ExportProof:
    """Collects, event by event, what the trailer of one export states and proves."""

    def __init__(
        self, signer: Signer, *, checkpoint: str, tree_size: int, filters: dict[str, str]
    ) -> None:
        self.signer = signer
        self.checkpoint = checkpoint
        self.tree_size = tree_size
        self.filters = filters
        self.count = 0
        self._digest = hashlib.sha256()
        self._reader: TreeReader | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.filters)

    def add(self, event: AuditEvent) -> None:
        self.count += 1
        self._digest.update(bytes.fromhex(event.leaf_hash))

    async def path(self, session: AsyncSession, event: AuditEvent) -> list[str]:
        """The event's inclusion proof at the export's tree size (hex hashes)."""
        if self._reader is None:
            self._reader = await TreeReader.open(session)
        self._reader.use(session)  # keeps its caches across the export's short transactions
        return [h.hex() for h in await self._reader.inclusion(event.seq - 1, self.tree_size)]

    def manifest(self) -> str:
        text = (
            f"{MANIFEST_HEADER}\norigin {self.signer.name}\ntree_size {self.tree_size}\n"
            f"events {self.count}\nleaves {self._digest.hexdigest()}\n"
            f"filters {_compact(self.filters)}\n"
        )
        return notes.sign(text, self.signer.name, self.signer.key)

    def trailer(self) -> bytes:
        """The last line of a JSON Lines export (and of a CSV zip's audit.proof.jsonl)."""
        data = {
            "checkpoint": self.checkpoint,
            "manifest": self.manifest(),
            "tree_size": self.tree_size,
        }
        return (_compact(data) + "\n").encode()


def jsonl_line(
    event: AuditEvent, joined: dict[int, Labels], path: list[str] | None = None
) -> bytes:
    """The canonical entry plus its leaf hash (and, in a filtered export, its proof). A
    format 2 entry holds its own labels; a format 1 event gets those `joined` from the
    current tables, marked `labels_from: "current"`, which a verifier sets aside."""
    data = entry(event) if event.v >= 2 else {**shown(event, joined), **entry(event)}
    data["leaf_hash"] = event.leaf_hash
    if path is not None:
        data["audit_path"] = path
    return (_compact(data) + "\n").encode()


def proof_line(event: AuditEvent, path: list[str]) -> bytes:
    return (_compact({"seq": event.seq, "audit_path": path}) + "\n").encode()
