"""RFC 9162 Merkle tree arithmetic: tree hashes, proof shapes and proof verification.

Pure functions over 32-byte hashes, with no storage. A proof is produced in two steps: the
`*_ranges` functions name the subtrees whose hashes make up the proof (each a half-open
range of leaf indices), and the caller resolves those ranges from wherever it keeps the
tree (see vault/audit/tree.py). Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 to the
letter, so a verifier written from the RFC agrees with this one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from vault.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = SHA-256()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than `size` (RFC 9162 §2.1.1's k), for size > 1."""
    return 1 << ((size - 1).bit_length() - 1)


class TreeBuilder:
    """Folds leaf hashes, in order, into the RFC 9162 tree head, in O(log n) memory.

    It keeps the compact range of the leaves seen: the roots of the complete subtrees,
    largest first. Because MTH splits at the largest power of two, the root of a tree of
    any size is those roots folded right to left.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (number of leaves, subtree hash)
        self.size = 0

    def push(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, digest = left_size + size, node_hash(left, digest)
        self._stack.append((size, digest))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.push(leaf)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH over the given leaf hashes."""
    builder = TreeBuilder()
    builder.extend(leaves)
    return builder.root()


Range = tuple[int, int]


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[size]), RFC 9162 §2.1.3.1, in order."""
    if not 0 <= index < size:
        raise ProofError("leaf index must be below the tree size")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index - start < k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()  # the recursion appends from the leaf upwards
    return path


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(first, D[second]), RFC 9162 §2.1.4.1, in order."""
    if not 0 < first <= second:
        raise ProofError("need 0 < first <= second")
    path: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = split(end - start)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        path.append((start, end))  # SUBPROOF(m, D[m], false) = [MTH(D[m])]
    path.reverse()
    return path


def _lsb(n: int) -> bool:
    return bool(n & 1)


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. Raises ProofError unless `leaf` is at `index` of the tree `root`."""
    if index >= size or index < 0:
        raise ProofError("leaf index must be below the tree size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, path: Sequence[bytes], *, first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2. Raises ProofError unless tree `second` extends tree `first`."""
    if not 0 < first <= second:
        raise ProofError("need 0 < first <= second")
    if first == second:
        if path:
            raise ProofError("a proof between equal sizes is empty")
        if first_root != second_root:
            raise ProofError("two different roots for the same tree size")
        return
    if not path:
        raise ProofError("consistency proof is empty")
    nodes = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node itself
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise ProofError("the two trees are not consistent")
