"""Merkle tree hashing, inclusion and consistency proofs as RFC 6962 defines them (RFC 9162, 2.1).

Leaves hash as ``SHA-256(0x00 || entry)`` and interior nodes as
``SHA-256(0x01 || left || right)``, so a leaf can never pass for a node. The
tree over n leaves splits at the largest power of two smaller than n. A log's
tree head commits to every record in order; an inclusion proof shows one
record is in it, a consistency proof that a later head extends an earlier one
(nothing rewritten, only appended).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pipewarden.errors import IntegrityError

__all__ = [
    "EMPTY_ROOT",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, in one pass: complete subtrees are merged as they fill, like a counter."""
    if not leaves:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes strictly decreasing
    for h in leaves:
        size, node = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, node_hash(left, node)
        stack.append((size, node))
    # What is left are the complete subtrees of n's binary digits, largest first; the ragged
    # right edge folds from the right.
    _, acc = stack.pop()
    while stack:
        _, left = stack.pop()
        acc = node_hash(left, acc)
    return acc


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the sibling hashes from leaf `index` up to the root."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Raise `IntegrityError` unless `proof` shows leaf hash `leaf` at `index` of the tree `expected_root`.

    The algorithm of RFC 9162, 2.1.3.2.
    """
    if not 0 <= index < size:
        raise IntegrityError(f"inclusion proof: leaf {index} is outside a tree of {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise IntegrityError("inclusion proof: longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("inclusion proof: shorter than the tree is deep")
    if r != expected_root:
        raise IntegrityError("inclusion proof: does not lead to the tree head")


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def consistency_proof(first_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of the first `first_size` leaves is a prefix of this one."""
    n = len(leaves)
    if not 0 < first_size <= n:
        raise ValueError(f"no consistency proof from {first_size} to {n} leaves")
    return _subproof(first_size, leaves, True)


def verify_consistency(
    first_size: int, second_size: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise `IntegrityError` unless `proof` shows the second tree extends the first (RFC 9162, 2.1.4.2)."""
    if not 0 < first_size <= second_size:
        raise IntegrityError(f"consistency proof: from {first_size} to {second_size} leaves is not a growth")
    if first_size == second_size:
        if proof:
            raise IntegrityError("consistency proof: must be empty between trees of the same size")
        if first_root != second_root:
            raise IntegrityError("consistency proof: two different heads for the same size")
        return
    path = list(proof)
    if first_size & (first_size - 1) == 0:  # a power of two: the first root is a node of the second tree
        path.insert(0, first_root)
    if not path:
        raise IntegrityError("consistency proof: empty")
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise IntegrityError("consistency proof: longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("consistency proof: shorter than the trees are deep")
    if fr != first_root:
        raise IntegrityError("consistency proof: does not lead to the earlier tree head")
    if sr != second_root:
        raise IntegrityError("consistency proof: does not lead to the later tree head")
