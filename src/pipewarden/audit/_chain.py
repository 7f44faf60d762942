"""The audit log's records: a hash chain, checked against signed Merkle checkpoints.

Record n holds ``hash_n = SHA-256("pipewarden.audit.record/1" 0x00 || u64 n || hash_{n-1} || body_n)``
with ``hash_0`` 32 zero bytes. Changing, removing, adding or moving one record
breaks the chain at that record; rewriting every record after it consistently
does not, which is what checkpoints are for: a signed RFC 6962 tree head over
the record hashes of the first `size` records, kept outside the log too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from pipewarden.audit._merkle import root

__all__ = [
    "GENESIS",
    "RECORD_DOMAIN",
    "ChainProblem",
    "ChainReport",
    "Record",
    "made_for",
    "record_hash",
    "verify_chain",
]

GENESIS = bytes(32)
#: What every record hash starts with (the database's chain function is given it too).
RECORD_DOMAIN = b"pipewarden.audit.record/1\x00"
#: How far around a record's position to look for the position its hash was made for.
_REORDER_REACH = 64


def record_hash(seq: int, prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(RECORD_DOMAIN + seq.to_bytes(8, "big") + prev_hash + body).digest()


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of the log: its position (from 1), the previous record's hash, its body, its hash."""

    seq: int
    prev_hash: bytes
    body: bytes
    hash: bytes

    @classmethod
    def after(cls, previous: Record | None, body: bytes) -> Record:
        seq = 1 if previous is None else previous.seq + 1
        prev = GENESIS if previous is None else previous.hash
        return cls(seq=seq, prev_hash=prev, body=body, hash=record_hash(seq, prev, body))


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first bad record and how: modified, deleted, inserted, reordered, truncated or rewritten."""

    seq: int
    kind: str
    detail: str

    def describe(self) -> str:
        return f"record {self.seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` saw: how many records, the hash of the last good one, the first problem."""

    checked: int
    last_hash: bytes
    problem: ChainProblem | None
    leaves: tuple[bytes, ...] = ()


def made_for(seq: int, prev_hash: bytes, body: bytes, digest: bytes) -> int | None:
    """The nearby other position a record's hash was made for (a moved record), if any."""
    for other in range(max(1, seq - _REORDER_REACH), seq + _REORDER_REACH + 1):
        if other != seq and record_hash(other, prev_hash, body) == digest:
            return other
    return None


def verify_chain(
    records: Iterable[Record], *, checkpoint_size: int = 0, checkpoint_root: bytes | None = None
) -> ChainReport:
    """Walk the log in order of position and report the first record that is wrong.

    With a checkpoint (a verified tree head over the first `checkpoint_size`
    record hashes), a log that is consistent in itself but shorter than the
    checkpoint is `truncated`, and one whose first records no longer give the
    checkpoint's head was `rewritten`.
    """
    expected = 1
    prev = GENESIS
    leaves: list[bytes] = []
    seen: set[int] = set()
    for rec in records:
        if rec.seq in seen or rec.seq < expected:
            return ChainReport(
                expected - 1, prev, ChainProblem(rec.seq, "inserted", "a second record at this position")
            )
        if rec.seq > expected:
            gap = f"record {expected}" if rec.seq == expected + 1 else f"records {expected}-{rec.seq - 1}"
            return ChainReport(expected - 1, prev, ChainProblem(expected, "deleted", f"{gap} missing"))
        if record_hash(rec.seq, rec.prev_hash, rec.body) != rec.hash:
            moved = made_for(rec.seq, rec.prev_hash, rec.body, rec.hash)
            if moved == rec.seq + 1:
                problem = ChainProblem(
                    rec.seq,
                    "deleted",
                    f"the record here was deleted and the later ones renumbered (this was {moved})",
                )
            elif moved == rec.seq - 1:
                problem = ChainProblem(
                    rec.seq,
                    "inserted",
                    f"a record was inserted before it and the later ones renumbered (this was {moved})",
                )
            elif moved is not None:
                problem = ChainProblem(rec.seq, "reordered", f"it was written as record {moved}")
            else:
                problem = ChainProblem(rec.seq, "modified", "its contents no longer match its hash")
            return ChainReport(expected - 1, prev, problem)
        if rec.prev_hash != prev:
            # The record before it is consistent in itself, yet this one names another: the one
            # before was changed and its hash recomputed, or put here in place of the original.
            problem = ChainProblem(
                rec.seq - 1,
                "modified",
                f"record {rec.seq} was written after a different record {rec.seq - 1}: this one was "
                "changed and its hash recomputed, or replaced",
            )
            return ChainReport(expected - 2, prev, problem)
        seen.add(rec.seq)
        leaves.append(rec.hash)
        prev = rec.hash
        expected += 1
    checked = expected - 1
    if checkpoint_root is not None and checkpoint_size:
        if checked < checkpoint_size:
            problem = ChainProblem(
                checked + 1,
                "truncated",
                f"the log ends at {checked} records; a signed checkpoint covers {checkpoint_size}",
            )
            return ChainReport(checked, prev, problem, tuple(leaves))
        if root(leaves[:checkpoint_size]) != checkpoint_root:
            problem = ChainProblem(
                1,
                "rewritten",
                f"the first {checkpoint_size} records are consistent among themselves but are not "
                "the ones the signed checkpoint covers: the log was rewritten",
            )
            return ChainReport(checked, prev, problem, tuple(leaves))
    return ChainReport(checked, prev, None, tuple(leaves))
