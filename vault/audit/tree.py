"""The RFC 9162 Merkle tree over the audit log's leaf hashes, kept in the database.

Leaf i of the tree is the event with seq i + 1; its hash is the event's stored
`leaf_hash` (already RFC 9162 §2.1.1's `SHA-256(0x00 || entry)`). Complete subtrees of
2**STORED_LEVEL leaves and every complete subtree above them are stored (`audit_tree_nodes`),
so any subtree hash a proof needs is one row, or a fold of at most one chunk of
2**STORED_LEVEL leaf hashes: a proof at a million leaves reads some forty rows and never
the whole log. Leaves past the stored part are folded in batches, in O(log n) memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.audit.merkle import (
    Range,
    TreeBuilder,
    consistency_ranges,
    inclusion_ranges,
    node_hash,
    root_of,
)
from vault.errors import AuditTreeError
from vault.models import AuditEvent, AuditHead, AuditNode, AuditTreeState

STORED_LEVEL = 8
CHUNK = 1 << STORED_LEVEL
READ_BATCH = 16 * CHUNK
_CACHE_SIZE = 4096


async def log_size(session: AsyncSession) -> int:
    """The number of events in the log (the current tree size)."""
    head = (await session.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar_one()
    return int(head)


async def leaves(session: AsyncSession, start: int, end: int) -> list[bytes]:
    """Leaf hashes of leaves [start, end), i.e. events start+1 .. end."""
    rows = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.leaf_hash)
            .where(AuditEvent.seq > start, AuditEvent.seq <= end)
            .order_by(col(AuditEvent.seq))
        )
    ).all()
    if len(rows) != end - start or (rows and (rows[0][0] != start + 1)):
        raise AuditTreeError(f"events {start + 1}..{end} are not all in the log")
    return [bytes.fromhex(digest) for _, digest in rows]


async def fold(session: AsyncSession, start: int, end: int) -> bytes:
    """MTH of leaves [start, end), read in batches (bounded memory whatever the range)."""
    builder = TreeBuilder()
    at = start
    while at < end:
        upto = min(end, at + READ_BATCH)
        builder.extend(await leaves(session, at, upto))
        at = upto
    return builder.root()


async def extend(session: AsyncSession) -> int:
    """Store the subtree hashes of every complete chunk not yet stored; returns how many
    leaves the stored tree covers. Locks the tree state row, so extenders take turns."""
    state = (
        await session.execute(
            select(AuditTreeState).where(AuditTreeState.id == 1).with_for_update()
        )
    ).scalar_one()
    complete = (await log_size(session)) // CHUNK * CHUNK
    if state.leaves >= complete:
        return state.leaves
    # The left siblings still waiting for their right halves, one per level at most.
    pending: dict[int, bytes] = {}
    level = STORED_LEVEL
    while state.leaves >> level:
        count = state.leaves >> level
        if count % 2:
            node = await session.get(AuditNode, (level, count - 1))
            if node is None:
                raise AuditTreeError("the stored tree lost a node; rebuild it")
            pending[level] = bytes.fromhex(node.hash)
        level += 1
    at = state.leaves
    while at < complete:
        upto = min(complete, at + READ_BATCH)
        batch = await leaves(session, at, upto)
        for offset in range(0, len(batch), CHUNK):
            level, index = STORED_LEVEL, (at + offset) >> STORED_LEVEL
            digest = root_of(batch[offset : offset + CHUNK])
            while True:
                session.add(AuditNode(level=level, index=index, hash=digest.hex()))
                if index % 2 == 0:
                    pending[level] = digest
                    break
                digest = node_hash(pending.pop(level), digest)
                level, index = level + 1, index // 2
        await session.flush()
        at = upto
    state.leaves = complete
    session.add(state)
    await session.flush()
    return complete


class TreeReader:
    """Subtree hashes, roots and proofs of the tree, within one session.

    Small caches keep the hashes an export asks for again and again (the upper nodes every
    inclusion proof shares, the chunk of leaves around consecutive events)."""

    def __init__(self, session: AsyncSession, *, stored_leaves: int) -> None:
        self._session = session
        self._stored = stored_leaves
        self._nodes: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._chunk: tuple[int, list[bytes]] | None = None

    @classmethod
    async def open(cls, session: AsyncSession) -> TreeReader:
        state = await session.get(AuditTreeState, 1)
        return cls(session, stored_leaves=state.leaves if state else 0)

    def use(self, session: AsyncSession) -> None:
        """Read through another session from now on (the caches stay: stored hashes never
        change, and the leaves below a tree size never do on an intact log)."""
        self._session = session

    async def _node(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key in self._nodes:
            self._nodes.move_to_end(key)
            return self._nodes[key]
        node = await self._session.get(AuditNode, key)
        if node is None:
            raise AuditTreeError("the stored tree lost a node; rebuild it")
        digest = bytes.fromhex(node.hash)
        self._nodes[key] = digest
        if len(self._nodes) > _CACHE_SIZE:
            self._nodes.popitem(last=False)
        return digest

    async def _small(self, start: int, end: int) -> bytes:
        # A range inside one stored chunk: read (and keep) the whole chunk once.
        first = start - start % CHUNK
        if self._chunk is None or self._chunk[0] != first:
            self._chunk = (first, await leaves(self._session, first, first + CHUNK))
        builder = TreeBuilder()
        builder.extend(self._chunk[1][start - first : end - first])
        return builder.root()

    async def subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), for the ranges RFC 9162's recursion produces."""
        size = end - start
        if start >= self._stored:  # nothing stored this far yet
            return await fold(self._session, start, end)
        if end <= self._stored:
            if size & (size - 1) == 0 and size >= CHUNK and start % size == 0:
                return await self._node(size.bit_length() - 1, start // size)
            if start // CHUNK == (end - 1) // CHUNK:
                return await self._small(start, end)
        if size <= CHUNK:
            return await fold(self._session, start, end)
        k = 1 << ((size - 1).bit_length() - 1)
        return node_hash(await self.subtree(start, start + k), await self.subtree(start + k, end))

    def _stored_keys(self, start: int, end: int, found: set[tuple[int, int]]) -> None:
        """The stored nodes `subtree(start, end)` will read (the same walk, no I/O)."""
        size = end - start
        if start >= self._stored:
            return
        if end <= self._stored:
            if size & (size - 1) == 0 and size >= CHUNK and start % size == 0:
                found.add((size.bit_length() - 1, start // size))
                return
            if start // CHUNK == (end - 1) // CHUNK:
                return
        if size <= CHUNK:
            return
        k = 1 << ((size - 1).bit_length() - 1)
        self._stored_keys(start, start + k, found)
        self._stored_keys(start + k, end, found)

    async def _prefetch(self, ranges: Sequence[Range]) -> None:
        # One query for every stored node a proof needs, rather than one per node.
        wanted: set[tuple[int, int]] = set()
        for start, end in ranges:
            self._stored_keys(start, end, wanted)
        wanted -= self._nodes.keys()
        if not wanted:
            return
        rows = (
            await self._session.execute(
                select(AuditNode).where(
                    or_(
                        *(
                            and_(col(AuditNode.level) == level, col(AuditNode.index) == index)
                            for level, index in wanted
                        )
                    )
                )
            )
        ).scalars()
        for node in rows:
            self._nodes[(node.level, node.index)] = bytes.fromhex(node.hash)
        while len(self._nodes) > _CACHE_SIZE:
            self._nodes.popitem(last=False)

    async def _resolve(self, ranges: Sequence[Range]) -> list[bytes]:
        await self._prefetch(ranges)
        return [await self.subtree(a, b) for a, b in ranges]

    async def root(self, size: int) -> bytes:
        if size <= 0:
            raise AuditTreeError("a checkpoint covers at least one event")
        return (await self._resolve([(0, size)]))[0]

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]), RFC 9162 §2.1.3.1."""
        return await self._resolve(inclusion_ranges(index, size))

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[second]), RFC 9162 §2.1.4.1."""
        return await self._resolve(consistency_ranges(first, second))

    async def leaf(self, index: int) -> bytes:
        return (await leaves(self._session, index, index + 1))[0]
