"""Signed checkpoints of the audit log, kept in the object store under `checkpoints/`.

A checkpoint (C2SP tlog-checkpoint in a signed note, see vault/audit/notes.py) commits to the
tree of the first N events. They are written at least every minute while the log grows and
on every export, to the object store rather than the database, so that a rewrite of the
whole audit table (chain recomputed, head moved) no longer matches checkpoints signed
earlier with a key the database never held. Before signing, the writer checks an RFC 9162
§2.1.4 consistency proof from the previous checkpoint: the log never signs a fork.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vault.audit import chain as audit
from vault.audit import notes
from vault.audit import tree as audit_tree
from vault.audit.actions import AuditAction
from vault.audit.merkle import TreeBuilder, verify_consistency
from vault.crypto.keyring import Keyring
from vault.db import transaction
from vault.errors import AuditTreeError, CheckpointError, NoteError, ProofError
from vault.models import AuditTreeState
from vault.store import StoredObject

logger = logging.getLogger(__name__)

PREFIX = "checkpoints/"
MAX_NOTE = 64 * 1024


class CheckpointStore(Protocol):
    """The part of the object store checkpoints use (vault.store.ObjectStore has it all)."""

    async def create_multipart(self, key: str) -> str: ...

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str: ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...

    def list(self, prefix: str = "") -> AsyncIterator[StoredObject]: ...


@dataclass(frozen=True, slots=True)
class Signer:
    """The log's name (the checkpoint origin and the note key name) and its signing key."""

    name: str
    key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> Signer:
        signing = keyring.signing_key()
        return cls(signing.name, signing.private_key())

    @property
    def public_key(self) -> bytes:
        return notes.raw_public(self.key.public_key())

    @property
    def verifier_key(self) -> str:
        return notes.verifier_key(self.name, self.public_key)

    @property
    def verifier(self) -> notes.Verifier:
        return notes.parse_verifier_key(self.verifier_key)


def object_key(size: int) -> str:
    # Zero-padded, so listing order is tree-size order.
    return f"{PREFIX}{size:020d}"


async def _put(store: CheckpointStore, key: str, data: bytes) -> None:
    # One part is a whole object on every store; the Protocol has no single-shot put.
    upload_id = await store.create_multipart(key)
    etag = await store.upload_part(key, upload_id, 1, data)
    await store.complete_multipart(key, upload_id, [(1, etag)])


async def read_note(store: CheckpointStore, key: str) -> str:
    chunks: list[bytes] = []
    async for chunk in store.read(key, 0, MAX_NOTE):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8")


async def _write_in(session: AsyncSession, store: CheckpointStore, signer: Signer) -> str | None:
    stored = await audit_tree.extend(session)  # also locks the state row
    state = await session.get(AuditTreeState, 1)
    if state is None:
        raise CheckpointError("the audit tree state row is missing")
    size = await audit_tree.log_size(session)
    if size == 0:
        return None
    if size == state.checkpoint_size and state.checkpoint_key:
        return await read_note(store, state.checkpoint_key)
    reader = audit_tree.TreeReader(session, stored_leaves=stored)
    root = await reader.root(size)
    if state.checkpoint_key:
        text = notes.open_note(await read_note(store, state.checkpoint_key), signer.verifier)
        previous = notes.parse_checkpoint(text, signer.name)
        try:
            if previous.size > size:
                raise ProofError("the log is shorter than the previous checkpoint")
            proof = await reader.consistency(previous.size, size)
            verify_consistency(
                previous.size, size, proof, first_root=previous.root, second_root=root
            )
        except (ProofError, AuditTreeError) as exc:
            raise CheckpointError(
                f"refusing to sign: the log no longer extends checkpoint {previous.size} ({exc})"
            ) from None
    note = notes.sign(notes.Checkpoint(signer.name, size, root).text(), signer.name, signer.key)
    key = object_key(size)
    await _put(store, key, note.encode())
    state.checkpoint_size, state.checkpoint_key = size, key
    session.add(state)
    return note


async def write(
    sessions: async_sessionmaker[AsyncSession], store: CheckpointStore, signer: Signer
) -> str | None:
    """Sign and store a checkpoint of the whole log as it stands; returns the signed note
    (the latest one when the log has not grown), or None while the log is empty."""
    async with transaction(sessions) as session:
        return await _write_in(session, store, signer)


async def latest(sessions: async_sessionmaker[AsyncSession], store: CheckpointStore) -> str | None:
    """The newest checkpoint written, as its signed note."""
    async with transaction(sessions) as session:
        state = await session.get(AuditTreeState, 1)
        key = state.checkpoint_key if state else None
    return None if key is None else await read_note(store, key)


async def run(
    sessions: async_sessionmaker[AsyncSession],
    store: CheckpointStore,
    signer: Signer,
    *,
    interval: float = 60.0,
) -> None:
    """Write a checkpoint every `interval` seconds when the log grew (runs until cancelled).

    Any number of app processes may run this; the tree state row makes them take turns.
    """
    while True:
        # Sleep first: a process that starts and stops at once (a test, a rolling restart)
        # adds nothing; whatever it logged is in the next checkpoint any process writes.
        await asyncio.sleep(interval)
        try:
            await write(sessions, store, signer)
        except Exception:
            # A store outage must not stop the loop; the next round catches up.
            logger.exception("could not write an audit checkpoint")


@dataclass(frozen=True, slots=True)
class StoredCheckpoints:
    checked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


async def _listed(store: CheckpointStore) -> list[str]:
    return sorted([obj.key async for obj in store.list(PREFIX)])


async def verify_stored(
    sessions: async_sessionmaker[AsyncSession], store: CheckpointStore, verifier: notes.Verifier
) -> StoredCheckpoints:
    """Check every stored checkpoint against the log: its signature, that the tree of its
    size recomputed from the events has its root, that each is consistent with the next
    (RFC 9162 §2.1.4.2) and the last with the current tree."""
    problems: list[str] = []
    signed: list[notes.Checkpoint] = []
    for key in await _listed(store):
        try:
            text = notes.open_note(await read_note(store, key), verifier)
            checkpoint = notes.parse_checkpoint(text, verifier.name)
        except (NoteError, UnicodeDecodeError) as exc:
            problems.append(f"checkpoint {key}: {exc}")
            continue
        if key != object_key(checkpoint.size):
            problems.append(f"checkpoint {key} holds tree size {checkpoint.size}")
            continue
        signed.append(checkpoint)
    async with transaction(sessions) as session:
        size = await audit_tree.log_size(session)
        roots = await _roots_at(session, sorted({c.size for c in signed if c.size <= size}))
        for checkpoint in signed:
            if checkpoint.size > size:
                problems.append(
                    f"checkpoint {checkpoint.size} covers more events than the log holds "
                    f"({size}): the log was truncated"
                )
            elif checkpoint.size not in roots:
                problems.append(
                    f"checkpoint {checkpoint.size} cannot be recomputed: events up to "
                    f"{checkpoint.size} are not all in the log"
                )
            elif roots[checkpoint.size] != checkpoint.root:
                problems.append(
                    f"checkpoint {checkpoint.size} does not match the log: events up to "
                    f"{checkpoint.size} were rewritten"
                )
        reader = await audit_tree.TreeReader.open(session)
        current = roots.get(size)
        chain = [c for c in signed if c.size in roots]
        ends = [*chain, notes.Checkpoint(verifier.name, size, current)] if current else chain
        for older, newer in itertools.pairwise(ends):
            try:
                proof = await reader.consistency(older.size, newer.size)
                verify_consistency(
                    older.size, newer.size, proof, first_root=older.root, second_root=newer.root
                )
            except (ProofError, AuditTreeError) as exc:
                problems.append(
                    f"checkpoints {older.size} and {newer.size} are not consistent ({exc})"
                )
    return StoredCheckpoints(len(signed), tuple(problems))


async def _roots_at(session: AsyncSession, sizes: list[int]) -> dict[int, bytes]:
    """The root at each size (and at the log's current size), in one pass over the leaves."""
    total = await audit_tree.log_size(session)
    wanted = sorted({*sizes, total} - {0})
    roots: dict[int, bytes] = {}
    builder = TreeBuilder()
    at = 0
    for size in wanted:
        while at < size:
            upto = min(size, at + audit_tree.READ_BATCH)
            try:
                builder.extend(await audit_tree.leaves(session, at, upto))
            except AuditTreeError:
                return roots  # a gap: the chain check names it
            at = upto
        roots[size] = builder.root()
    return roots


async def show_verifier_key(
    session: AsyncSession, context: audit.AuditContext, signer: Signer
) -> str:
    """The log's verifier key, handed to someone (audited: who holds it can check exports)."""
    await audit.record(session, context, AuditAction.AUDIT_KEY_VIEWED, details={"key": signer.name})
    return signer.verifier_key
