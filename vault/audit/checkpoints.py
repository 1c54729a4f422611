"""Signed checkpoints of the audit log, kept in the object store under `checkpoints/`.

A checkpoint (C2SP tlog-checkpoint in a signed note, see vault/audit/notes.py) commits to the
tree of the first N events. They are written at least every minute while the log grows and
on every export, to the object store rather than the database, so that a rewrite of the
whole audit table (chain recomputed, head moved) no longer matches checkpoints signed
earlier with a key the database never held. Before signing, the writer checks an RFC 9162
§2.1.4 consistency proof from the previous checkpoint: the log never signs a fork.

The previous checkpoint is the newest one in the store that carries our signature, not the
one the database's tree state names: whoever can change the database could point that row
at an older checkpoint and have the log sign a rewritten tail. The row is only a hint where
to start listing, and a checkpoint, once stored, is never replaced (`put_new` is
create-only), so a forged history cannot take over an honest checkpoint's key either.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
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

    async def put_new(self, key: str, data: bytes) -> str | None: ...

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes | memoryview]: ...

    def list(self, prefix: str = "", start_after: str = "") -> AsyncIterator[StoredObject]: ...


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


async def read_note(store: CheckpointStore, key: str) -> str:
    chunks: list[bytes | memoryview] = []
    async for chunk in store.read(key, 0, MAX_NOTE):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8")


@dataclass(frozen=True, slots=True)
class _Stored:
    key: str
    note: str
    checkpoint: notes.Checkpoint


async def _ours(store: CheckpointStore, key: str, verifier: notes.Verifier) -> _Stored | None:
    """The checkpoint at `key` if it is one of ours: signed by our key, at its size's key."""
    try:
        note = await read_note(store, key)
        checkpoint = notes.parse_checkpoint(notes.open_note(note, verifier), verifier.name)
    except (NoteError, UnicodeDecodeError):
        return None
    return _Stored(key, note, checkpoint) if key == object_key(checkpoint.size) else None


async def _newest_from(
    store: CheckpointStore, verifier: notes.Verifier, start_after: str
) -> _Stored | None:
    keys = [obj.key async for obj in store.list(PREFIX, start_after=start_after)]
    # Newest first: an object that is not ours (another key's, or garbage) is passed over.
    for key in sorted(keys, reverse=True):
        found = await _ours(store, key, verifier)
        if found is not None:
            return found
    return None


async def _newest(store: CheckpointStore, verifier: notes.Verifier, *, hint: int) -> _Stored | None:
    """The newest checkpoint in the store signed by our key.

    `hint` (the tree size the database last recorded) only saves listing every checkpoint
    ever written: the listing starts at its key, and whatever the store holds from there up
    is read, so a hint that is too low changes nothing. When nothing of ours is found from
    the hint up (a hint too high, or naming an object that is gone), the whole prefix is
    listed."""
    if hint > 0:
        found = await _newest_from(store, verifier, object_key(hint - 1))
        if found is not None:
            return found
    return await _newest_from(store, verifier, "")


def _refuse(reason: str) -> CheckpointError:
    return CheckpointError(f"refusing to sign a checkpoint: {reason}")


async def _write_in(session: AsyncSession, store: CheckpointStore, signer: Signer) -> str | None:
    stored = await audit_tree.extend(session)  # also locks the state row
    state = await session.get(AuditTreeState, 1)
    if state is None:
        raise CheckpointError("the audit tree state row is missing")
    size = await audit_tree.log_size(session)
    if size == 0:
        return None
    named, named_size = state.checkpoint_key or None, state.checkpoint_size
    if named is not None and named != object_key(named_size):
        raise _refuse(f"the database names checkpoint {named} for tree size {named_size}")
    newest = await _newest(store, signer.verifier, hint=named_size if named else 0)
    if named is not None and (newest is None or newest.checkpoint.size < named_size):
        raise _refuse(
            f"the database names checkpoint {named}, which the store does not hold "
            f"(its newest signed checkpoint is {newest.key if newest else 'none'})"
        )
    reader = audit_tree.TreeReader(session, stored_leaves=stored)
    root = await reader.root(size)
    if newest is not None:
        previous = newest.checkpoint
        # The database saying otherwise is not trusted either way: what must hold is that the
        # log extends the newest checkpoint stored. A row that lags (a crash between storing a
        # checkpoint and committing) is then repaired; a row pointed back at an older
        # checkpoint to hide a rewritten tail is not, as that tail no longer extends this one.
        lag = "" if newest.key == named else f" (the database names {named or 'none'})"
        try:
            if previous.size > size:
                raise ProofError(f"the log holds only {size} events")
            proof = await reader.consistency(previous.size, size)
            verify_consistency(
                previous.size, size, proof, first_root=previous.root, second_root=root
            )
        except (ProofError, AuditTreeError) as exc:
            raise _refuse(
                f"the log no longer extends checkpoint {previous.size}, the newest in the "
                f"store{lag} ({exc})"
            ) from None
        if lag:
            logger.warning(
                "the audit tree state named checkpoint %s, the store's newest is %s; the log "
                "extends it, so the state now names it",
                named,
                newest.key,
            )
        if previous.size == size:
            state.checkpoint_size, state.checkpoint_key = size, newest.key
            session.add(state)
            return newest.note
    note = notes.sign(notes.Checkpoint(signer.name, size, root).text(), signer.name, signer.key)
    key = object_key(size)
    if await store.put_new(key, note.encode()) is None:
        # Not ours (the newest of ours is older), or written since we looked: kept as it is.
        raise _refuse(f"{key} already exists in the store and is kept as it is")
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


async def latest(
    sessions: async_sessionmaker[AsyncSession], store: CheckpointStore, verifier: notes.Verifier
) -> str | None:
    """The newest checkpoint in the store signed by our key, as its signed note (the
    database's pointer only says where to start looking)."""
    async with transaction(sessions) as session:
        state = await session.get(AuditTreeState, 1)
        hint = state.checkpoint_size if state and state.checkpoint_key else 0
    newest = await _newest(store, verifier, hint=hint)
    return None if newest is None else newest.note


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
