"""A new process's first checkpoint starts from the frontier stored with the newest checkpoint.

Every CLI command is a new process that signs a checkpoint at exit when it
appended; on a log of millions of records that must not re-read the whole log.
The stored frontier is not signed: one that does not give its checkpoint's
signed head is never used, and `verify` names it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from pipewarden.audit import AuditLog, root
from pipewarden.audit._frontier import Frontier
from pipewarden.db import Database, audit_checkpoints, audit_records
from pipewarden.errors import IntegrityError
from tests.audit.test_log import event, open_log
from tests.audit.test_log_tamper import unguarded

SIZE = 40  # records, checkpointed every 10


@pytest.fixture
def log(database: Database, tmp_path: Path) -> AuditLog:
    log = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    for i in range(SIZE):
        log.append(event(i))
    log.close()
    return log


def stored_frontiers(database: Database) -> dict[int, bytes | None]:
    k = audit_checkpoints.c
    with database.transaction(write=False) as conn:
        rows = conn.execute(select(k.size, k.frontier).order_by(k.size)).all()
    return {int(size): None if blob is None else bytes(blob) for size, blob in rows}


def damage_record(database: Database, seq: int) -> None:
    """Change a record's body, leaving its stored hash: the chain breaks there."""
    with unguarded(database) as conn:
        body = conn.execute(select(audit_records.c.body).where(audit_records.c.seq == seq)).scalar_one()
        conn.execute(
            update(audit_records)
            .where(audit_records.c.seq == seq)
            .values(body=bytes(body).replace(b"churn", b"fraud"))
        )


def test_every_checkpoint_stores_the_frontier_of_its_size(log: AuditLog, database: Database) -> None:
    hashes = [e.hash for e in log.records()]
    stored = stored_frontiers(database)
    assert sorted(stored) == [10, 20, 30, 40]
    for size, blob in stored.items():
        expected = Frontier()
        for digest in hashes[:size]:
            expected.add(digest)
        assert blob == expected.to_bytes()


def test_a_new_process_signs_from_the_stored_frontier_without_rereading_the_log(
    log: AuditLog, database: Database, tmp_path: Path
) -> None:
    # Record 5 is damaged under checkpoint 40. A writer that re-read the log would refuse to sign;
    # one that starts from checkpoint 40's frontier reads only records 41 on.
    damage_record(database, 5)
    fresh = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    fresh.append(event(SIZE))
    fresh.close()
    hashes = [e.hash for e in log.records()]  # the stored hashes, as signed before the damage
    assert max(stored_frontiers(database)) == SIZE + 1
    with database.transaction(write=False) as conn:
        signed = conn.execute(
            select(audit_checkpoints.c.root).where(audit_checkpoints.c.size == SIZE + 1)
        ).scalar_one()
    # It signs the history checkpoint 40 signed, plus the new record: it launders nothing...
    assert bytes(signed) == root(hashes)
    # ...and verification still names the damaged record.
    problem = fresh.verify().problem
    assert problem is not None and (problem.seq, problem.kind) == (5, "modified")


def test_without_a_stored_frontier_the_new_process_reads_the_records(
    log: AuditLog, database: Database, tmp_path: Path
) -> None:
    # The counterpart: with the frontiers gone, the same damage stops the checkpoint.
    damage_record(database, 5)
    with unguarded(database) as conn:
        conn.execute(update(audit_checkpoints).values(frontier=None))
    fresh = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    fresh.append(event(SIZE))
    with pytest.raises(IntegrityError, match="record 5: modified"):
        fresh.checkpoint()


@pytest.mark.parametrize("forgery", ["another-tree", "wrong-length"])
def test_a_forged_frontier_is_never_used_and_verify_names_it(
    log: AuditLog, database: Database, tmp_path: Path, forgery: str
) -> None:
    # A frontier that would make the next checkpoint sign a history that never was.
    other = Frontier()
    for i in range(SIZE):
        other.add(bytes([i]) * 32)
    blob = other.to_bytes() if forgery == "another-tree" else b"\x00" * 31
    with unguarded(database) as conn:
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.size == SIZE).values(frontier=blob))
    fresh = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    for i in range(5):
        fresh.append(event(SIZE + i))
    fresh.close()
    hashes = [e.hash for e in log.records()]
    with database.transaction(write=False) as conn:
        signed = conn.execute(
            select(audit_checkpoints.c.root).where(audit_checkpoints.c.size == SIZE + 5)
        ).scalar_one()
    assert bytes(signed) == root(hashes), "a checkpoint was signed over a forged frontier"
    result = fresh.verify()
    assert result.problem is not None and not result.notes
    assert (result.problem.seq, result.problem.kind) == (SIZE, "checkpoint")
    assert "the frontier stored with it is not the tree's at 40 records" in result.problem.detail
