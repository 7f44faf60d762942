"""The tamper-evident audit log. This release holds its core: the record hash chain, checked
against RFC 6962 Merkle tree heads (checkpoints), with inclusion and consistency proofs.

>>> from pipewarden.audit import leaf_hash, root, inclusion_proof, verify_inclusion
>>> leaves = [leaf_hash(e) for e in (b"a", b"b", b"c")]
>>> verify_inclusion(leaves[1], 1, 3, inclusion_proof(1, leaves), root(leaves))
"""

from __future__ import annotations

from pipewarden.audit._chain import GENESIS, ChainProblem, ChainReport, Record, record_hash, verify_chain
from pipewarden.audit._checkpoint import CHECKPOINT_PAYLOAD_TYPE, Checkpoint
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
    "CHECKPOINT_PAYLOAD_TYPE",
    "EMPTY_ROOT",
    "GENESIS",
    "ChainProblem",
    "ChainReport",
    "Checkpoint",
    "Record",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "record_hash",
    "root",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
]
