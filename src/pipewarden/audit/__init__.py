"""The tamper-evident audit log: events in a hash chain in the database, under signed RFC 6962
Merkle tree heads (checkpoints) kept in the database and exported as files, with inclusion proofs
anyone can check with the public key alone.

>>> from pipewarden.audit import AuditLog, verify_proof
>>> log = workspace.audit_log()
>>> seq = log.append(event)
>>> log.verify().ok
True
>>> verify_proof(log.proof(seq), workspace.trusted_keys()).seq == seq
True
"""

from __future__ import annotations

from pipewarden.audit._chain import GENESIS, ChainProblem, ChainReport, Record, record_hash, verify_chain
from pipewarden.audit._checkpoint import CHECKPOINT_PAYLOAD_TYPE, Checkpoint
from pipewarden.audit._info import database_log_id
from pipewarden.audit._log import AuditLog
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
from pipewarden.audit._proof import PROOF_FORMAT, ProofVerification, verify_proof
from pipewarden.audit._read import Entry
from pipewarden.audit._verify import PROBLEM_KINDS, AuditProblem, AuditVerification

__all__ = [
    "CHECKPOINT_PAYLOAD_TYPE",
    "EMPTY_ROOT",
    "GENESIS",
    "PROBLEM_KINDS",
    "PROOF_FORMAT",
    "AuditLog",
    "AuditProblem",
    "AuditVerification",
    "ChainProblem",
    "ChainReport",
    "Checkpoint",
    "Entry",
    "ProofVerification",
    "Record",
    "consistency_proof",
    "database_log_id",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "record_hash",
    "root",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
    "verify_proof",
]
