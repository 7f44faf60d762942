"""The tamper-evident audit log. This release holds its hashing core: RFC 6962 Merkle trees.

>>> from pipewarden.audit import leaf_hash, root, inclusion_proof, verify_inclusion
>>> leaves = [leaf_hash(e) for e in (b"a", b"b", b"c")]
>>> verify_inclusion(leaves[1], 1, 3, inclusion_proof(1, leaves), root(leaves))
"""

from __future__ import annotations

from pipewarden.audit._merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

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
