"""RFC 9162 §2.1 tree hashes and proofs, checked against the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest

from vault.audit import merkle
from vault.errors import ProofError


def _mth(leaves: list[bytes]) -> bytes:
    """MTH written as RFC 9162 §2.1.1 states it, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = merkle.split(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [_mth(leaves)]
    k = merkle.split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


LEAVES = [merkle.leaf_hash(str(i).encode()) for i in range(40)]


def _resolve(ranges: list[tuple[int, int]]) -> list[bytes]:
    return [_mth(LEAVES[a:b]) for a, b in ranges]


def test_builder_matches_the_recursive_definition_at_every_size() -> None:
    builder = merkle.TreeBuilder()
    assert builder.root() == hashlib.sha256(b"").digest()
    for n, leaf in enumerate(LEAVES, start=1):
        builder.push(leaf)
        assert builder.root() == _mth(LEAVES[:n]), n


def test_inclusion_proofs_for_every_leaf_of_every_size_up_to_40() -> None:
    for n in range(1, 41):
        root = _mth(LEAVES[:n])
        for m in range(n):
            path = _resolve(merkle.inclusion_ranges(m, n))
            assert path == _path(m, LEAVES[:n]), (m, n)
            merkle.verify_inclusion(LEAVES[m], m, n, path, root)
            if n > 1:
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(LEAVES[(m + 1) % n], m, n, path, root)
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(LEAVES[m], m, n, path[:-1], root)


def test_consistency_proofs_for_every_pair_up_to_40() -> None:
    for n in range(1, 41):
        second = _mth(LEAVES[:n])
        for m in range(1, n + 1):
            first = _mth(LEAVES[:m])
            path = _resolve(merkle.consistency_ranges(m, n))
            assert path == _subproof(m, LEAVES[:n], True), (m, n)
            merkle.verify_consistency(m, n, path, first_root=first, second_root=second)
            if m < n:
                forged = merkle.node_hash(first, first)
                with pytest.raises(ProofError):
                    merkle.verify_consistency(m, n, path, first_root=forged, second_root=second)
                with pytest.raises(ProofError):
                    merkle.verify_consistency(m, n, path, first_root=first, second_root=forged)


def test_a_rewritten_history_is_not_consistent() -> None:
    rewritten = [*LEAVES[:5], merkle.leaf_hash(b"forged"), *LEAVES[6:20]]
    path = [_mth(rewritten[a:b]) for a, b in merkle.consistency_ranges(10, 20)]
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            10, 20, path, first_root=_mth(LEAVES[:10]), second_root=_mth(rewritten)
        )


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 3)])
def test_out_of_range_inclusion_is_refused(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_ranges(index, size)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(LEAVES[0], index, size, [], LEAVES[0])


@pytest.mark.parametrize(("first", "second"), [(0, 3), (4, 3), (-1, 2)])
def test_out_of_range_consistency_is_refused(first: int, second: int) -> None:
    with pytest.raises(ProofError):
        merkle.consistency_ranges(first, second)
