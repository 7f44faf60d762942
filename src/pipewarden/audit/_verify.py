"""Verifying a whole audit log: the chain record by record, and every signed checkpoint against it.

One pass over the records in order, in constant memory: each record's hash is
recomputed and its link to the one before checked, and the record hashes are
folded into a Merkle frontier, so the tree head at each checkpoint's size is at
hand when the walk passes it. The checkpoints come from the database and from
the exported files; a rewrite that leaves the chain consistent still changes
the tree head a signed checkpoint holds. The frontier stored beside each
checkpoint (where writers resume, _resume.py) is compared with the walk's too.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from pipewarden.audit._chain import GENESIS, RECORD_DOMAIN, made_for, record_hash
from pipewarden.audit._checkpoint import Checkpoint
from pipewarden.audit._export import LATEST, exported_checkpoints
from pipewarden.audit._frontier import Frontier
from pipewarden.audit._rows import stream_records
from pipewarden.crypto import TrustedKeys
from pipewarden.db import Database, audit_checkpoints
from pipewarden.errors import ConfigError, IntegrityError

__all__ = ["PROBLEM_KINDS", "AuditProblem", "AuditVerification", "catch_up", "classify", "verify_log"]

PROBLEM_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "rewritten", "checkpoint")


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """The first thing wrong: a record (`seq`) and how, or a checkpoint (`seq` is its size)."""

    seq: int
    kind: str
    detail: str

    def describe(self) -> str:
        if self.kind == "checkpoint":
            return f"checkpoint {self.seq}: {self.detail}" if self.seq else f"checkpoint: {self.detail}"
        return f"record {self.seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """What `AuditLog.verify` found: how much it checked, and the first problem (None when intact)."""

    log_id: str
    records: int
    checkpoints: int
    exported: int
    newest_exported: str | None
    newest_exported_size: int
    head: bytes
    problem: AuditProblem | None = None
    #: Further problems found besides the first (checkpoints, when a record is bad too).
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        exported = (
            f"; newest exported checkpoint {self.newest_exported_size} ({self.newest_exported})"
            if self.newest_exported
            else "; no exported checkpoint"
        )
        summary = (
            f"audit log {self.log_id}: {self.records} records, {self.checkpoints} stored checkpoints, "
            f"{self.exported} exported checkpoint files checked{exported}"
        )
        if self.problem is None:
            return f"{summary}: intact (head {self.head.hex()})"
        return f"{summary}: {self.problem.describe()}"


@dataclass(frozen=True, slots=True)
class _Signed:
    size: int
    root: bytes
    label: str
    stored: bool  # in the database (else an exported file)
    frontier: bytes | None = None  # the frontier stored with it (database rows only)


def classify(expected: int, prev: bytes, row: Sequence[Any], following: Sequence[Any] | None) -> AuditProblem:
    """Name the first bad record: `row` stands where record `expected` (chained after `prev`) should.

    `following` is the row after it, which tells a swap from a deletion and an
    inserted record from a modified one.
    """
    seq, prev_hash, body, digest = int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3])
    if seq > expected:
        gap = f"record {expected}" if seq == expected + 1 else f"records {expected}-{seq - 1}"
        return AuditProblem(expected, "deleted", f"{gap} missing")
    if seq < expected:
        return AuditProblem(seq, "inserted", "a second record at this position")
    # The next record is the one that was here: this one was slipped in, the rest renumbered.
    next_was_here = (
        following is not None
        and int(following[0]) == expected + 1
        and bytes(following[1]) == prev
        and record_hash(expected, prev, bytes(following[2])) == bytes(following[3])
    )
    if record_hash(seq, prev_hash, body) != digest:
        moved = made_for(seq, prev_hash, body, digest)
        if moved == seq + 1 and next_was_here:
            return AuditProblem(seq, "reordered", f"records {seq} and {seq + 1} were swapped")
        if moved == seq + 1:
            return AuditProblem(
                seq,
                "deleted",
                f"the record here was deleted and the later ones renumbered (this was {moved})",
            )
        if moved == seq - 1:
            return AuditProblem(
                seq - 1,
                "inserted",
                f"a record was inserted here and the later ones renumbered (record {seq} was {seq - 1})",
            )
        if moved is not None:
            return AuditProblem(seq, "reordered", f"it was written as record {moved}")
        if next_was_here:
            return AuditProblem(seq, "inserted", "a record was inserted here and the later ones renumbered")
        return AuditProblem(seq, "modified", "its contents no longer match its hash")
    if next_was_here:
        return AuditProblem(seq, "inserted", "a record was inserted here and the later ones renumbered")
    return AuditProblem(
        seq - 1,
        "modified",
        f"record {seq} was written after a different record {seq - 1}: this one was changed and its "
        "hash recomputed, or replaced",
    )


def catch_up(
    conn: Connection, frontier: Frontier, last: bytes, *, upto: int, label: str
) -> tuple[Frontier, bytes]:
    """Extend a copy of `frontier` with records ``frontier.size + 1 .. upto``, checking that they chain.

    Raises `IntegrityError` at the first record that does not: a checkpoint is never signed over one.
    """
    frontier = frontier.copy()
    expected, prev = frontier.size + 1, last
    rows: Iterator[Any] = itertools.chain.from_iterable(stream_records(conn, start=expected, end=upto))
    for row in rows:
        seq, prev_hash, body, digest = row
        if seq != expected or prev_hash != prev or record_hash(seq, prev_hash, body) != digest:
            problem = classify(expected, prev, row, next(rows, None))
            raise IntegrityError(
                f"audit log {label}: {problem.describe()}; no checkpoint is signed over it "
                "(run 'pipewarden audit verify')"
            )
        frontier.add(digest)
        prev = digest
        expected += 1
    if frontier.size != upto:
        raise IntegrityError(f"audit log {label}: records {frontier.size + 1}-{upto} disappeared while read")
    return frontier, prev


def _load_checkpoints(
    conn: Connection, *, log_id: str, trusted: TrustedKeys, files: Sequence[Path]
) -> tuple[dict[int, list[_Signed]], list[AuditProblem], int, int]:
    """Every signed checkpoint that opens, and the problems of those that do not."""
    signed: dict[int, list[_Signed]] = {}
    problems: list[AuditProblem] = []
    stored: dict[int, bytes] = {}
    k = audit_checkpoints.c
    rows = conn.execute(select(k.size, k.root, k.envelope, k.frontier).order_by(k.size)).all()
    for size, row_root, envelope, frontier in rows:
        label = f"checkpoint {size} (database)"
        try:
            cp = Checkpoint.open(bytes(envelope), trusted=trusted, label=label)
        except IntegrityError as exc:
            problems.append(AuditProblem(int(size), "checkpoint", str(exc)))
            continue
        if cp.log != log_id:
            problems.append(
                AuditProblem(size, "checkpoint", f"{label}: signed for log {cp.log!r}, not {log_id!r}")
            )
        elif cp.size != size or cp.root != bytes(row_root):
            problems.append(
                AuditProblem(
                    size, "checkpoint", f"{label}: the row's size or root is not what its envelope signs"
                )
            )
        else:
            stored[size] = cp.root
            blob = None if frontier is None else bytes(frontier)
            signed.setdefault(size, []).append(_Signed(size, cp.root, label, stored=True, frontier=blob))
    exported = 0
    for path in files:
        try:
            cp = Checkpoint.open(path.read_bytes(), trusted=trusted, label=str(path))
        except OSError as exc:
            raise ConfigError(f"{path}: checkpoint file cannot be read: {exc.strerror}") from None
        except IntegrityError as exc:
            problems.append(AuditProblem(0, "checkpoint", str(exc)))
            continue
        exported += 1
        if cp.log != log_id:
            problems.append(
                AuditProblem(cp.size, "checkpoint", f"{path}: signed for log {cp.log!r}, not {log_id!r}")
            )
            continue
        if cp.size not in stored:
            problems.append(
                AuditProblem(
                    cp.size,
                    "checkpoint",
                    f"{path} was signed by this log but the database has no valid checkpoint {cp.size}: "
                    "it was deleted or replaced there",
                )
            )
        elif stored[cp.size] != cp.root:
            problems.append(
                AuditProblem(
                    cp.size,
                    "checkpoint",
                    f"{path} and the database's checkpoint {cp.size} sign different heads",
                )
            )
        signed.setdefault(cp.size, []).append(_Signed(cp.size, cp.root, str(path), stored=False))
    return signed, problems, len(rows), exported


def verify_log(
    db: Database,
    *,
    log_id: str,
    trusted: TrustedKeys,
    checkpoint_dir: Path | None,
    extra: Sequence[Path] = (),
    progress: Callable[[int], None] | None = None,
) -> AuditVerification:
    files = exported_checkpoints(checkpoint_dir) if checkpoint_dir is not None else []
    files = [*files, *extra]
    try:
        with db.transaction(write=False) as conn:
            if db.dialect == "postgresql":
                # One snapshot for the checkpoints and the records, however long the walk takes.
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            signed, problems, stored, exported = _load_checkpoints(
                conn, log_id=log_id, trusted=trusted, files=files
            )
            walked, head, stream_problem = _walk(conn, signed, progress, problems)
    except SQLAlchemyError as exc:
        raise db.error(f"audit log {log_id}: cannot read the records", exc) from None
    # A bad record outranks a bad checkpoint: the verdict is first about the records.
    candidates: list[tuple[int, int, AuditProblem]] = []
    if stream_problem is not None:
        candidates.append((0, stream_problem.seq, stream_problem))
    else:
        beyond = [s for size, group in signed.items() if size > walked for s in group]
        if beyond:
            covering = max(beyond, key=lambda s: s.size)
            problem = AuditProblem(
                walked + 1,
                "truncated",
                f"the log ends at {walked} records; {covering.label} signs {covering.size}",
            )
            candidates.append((0, problem.seq, problem))
    candidates.extend((1, p.seq, p) for p in problems)
    candidates.sort(key=lambda c: (c[0], c[1]))
    files_signed = [s for group in signed.values() for s in group if not s.stored]
    # The numbered file rather than its latest.json copy, when both hold the newest.
    newest = max(files_signed, key=lambda s: (s.size, not s.label.endswith(LATEST)), default=None)
    return AuditVerification(
        log_id=log_id,
        records=walked,
        checkpoints=stored,
        exported=exported,
        newest_exported=newest.label if newest else None,
        newest_exported_size=newest.size if newest else 0,
        head=head,
        problem=candidates[0][2] if candidates else None,
        notes=tuple(c[2].describe() for c in candidates[1:]),
    )


def _walk(
    conn: Connection,
    signed: dict[int, list[_Signed]],
    progress: Callable[[int], None] | None,
    problems: list[AuditProblem],
) -> tuple[int, bytes, AuditProblem | None]:
    """Walk every record in order; (records that are good, the last good hash, the first problem).

    A stored frontier that is not the walk's goes into `problems` (the walk goes on).
    """
    sizes = sorted(signed)
    pending = iter(sizes)
    check_at = next(pending, -1)
    # The largest checkpoint sizes whose heads matched: any, and an exported file. When an exported
    # checkpoint disagrees, the database's own (perhaps re-signed) checkpoints cannot narrow it down.
    good_any = good_file = 0
    frontier = Frontier()
    add = frontier.add
    sha256 = hashlib.sha256
    domain = RECORD_DOMAIN
    expected, prev = 1, GENESIS
    for batch in stream_records(conn):
        rows: Iterator[Any] = iter(batch)
        for row in rows:
            seq, prev_hash, body, digest = row
            if (
                seq != expected
                or prev_hash != prev
                or sha256(domain + seq.to_bytes(8, "big") + prev_hash + body).digest() != digest
            ):
                following = next(rows, None)
                if following is None:
                    following = _first_after(conn, seq)
                return expected - 1, prev, classify(expected, prev, row, following)
            if check_at == expected - 1:
                problem = _check_head(signed[check_at], frontier, good_any, good_file)
                if problem is not None:
                    return expected - 1, prev, problem
                _check_frontier(signed[check_at], frontier, problems)
                good_any = check_at
                if any(not s.stored for s in signed[check_at]):
                    good_file = check_at
                check_at = next(pending, -1)
            add(digest)
            prev = digest
            expected += 1
        if progress is not None:
            progress(expected - 1)
    if check_at == expected - 1:
        problem = _check_head(signed[check_at], frontier, good_any, good_file)
        if problem is not None:
            return expected - 1, prev, problem
        _check_frontier(signed[check_at], frontier, problems)
    return expected - 1, prev, None


def _check_frontier(group: list[_Signed], frontier: Frontier, problems: list[AuditProblem]) -> None:
    """A stored frontier that is not the tree's is never used (_resume.py), but it was altered: say so."""
    mine = frontier.to_bytes()
    problems.extend(
        AuditProblem(
            signed.size,
            "checkpoint",
            f"{signed.label}: the frontier stored with it is not the tree's at {signed.size} records "
            "(altered in the database; writers do not start from it)",
        )
        for signed in group
        if signed.frontier is not None and signed.frontier != mine
    )


def _check_head(
    group: list[_Signed], frontier: Frontier, good_any: int, good_file: int
) -> AuditProblem | None:
    head = frontier.root()
    for signed in sorted(group, key=lambda s: not s.stored):
        if signed.root != head:
            first = (good_any if signed.stored else good_file) + 1
            return AuditProblem(
                first,
                "rewritten",
                f"records {first}-{signed.size} chain among themselves but are not the ones {signed.label} "
                "signs: they were rewritten and their hashes recomputed",
            )
    return None


def _first_after(conn: Connection, seq: int) -> Any:
    for batch in stream_records(conn, start=seq + 1, end=seq + 1):
        return batch[0]
    return None
