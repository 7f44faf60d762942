"""Tampering with the stored log through raw SQL, as a database administrator could, on both databases.

Each attack first takes the append-only triggers out of the way (that the
triggers refuse UPDATE and DELETE is tested in tests/db), then `verify` must
name the first bad record and the kind of change.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from pipewarden.audit import AuditLog, AuditProblem, Checkpoint, Record, record_hash, root
from pipewarden.crypto import SigningKey
from pipewarden.db import Database, audit_checkpoints, audit_records
from tests.audit.test_log import KEY, event, open_log

SIZE = 50  # records, checkpointed every 10
APPEND_ONLY = ("audit_records", "audit_checkpoints", "audit_log_info")


@pytest.fixture
def log(database: Database, tmp_path: Path) -> AuditLog:
    log = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    for i in range(SIZE):
        log.append(event(i))
    log.close()
    assert log.verify().ok
    return log


@contextmanager
def unguarded(database: Database) -> Iterator[Connection]:
    """A transaction with the append-only triggers out of the way: what a database administrator has."""
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            for table in APPEND_ONLY:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for table in APPEND_ONLY:
                for verb in ("update", "delete"):
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        yield conn


def records(conn: Connection) -> list[Record]:
    rows = conn.execute(select(audit_records).order_by(audit_records.c.seq)).all()
    return [Record(r.seq, bytes(r.prev_hash), bytes(r.body), bytes(r.hash)) for r in rows]


def renumber(conn: Connection, *, after: int, by: int) -> None:
    """Move every record after `after` by `by` positions (in two steps, so no two rows ever collide)."""
    c = audit_records.c
    conn.execute(update(audit_records).where(c.seq > after).values(seq=-c.seq))
    conn.execute(update(audit_records).where(c.seq < 0).values(seq=-c.seq + by))


def rewrite_from(conn: Connection, start: int) -> list[Record]:
    """Change record `start` and recompute every hash from it on, so the chain is consistent again."""
    old = records(conn)
    conn.execute(delete(audit_records).where(audit_records.c.seq >= start))
    new = old[: start - 1]
    for rec in old[start - 1 :]:
        body = rec.body.replace(b"churn", b"fraud") if rec.seq == start else rec.body
        new.append(Record.after(new[-1] if new else None, body))
    rows = [
        {"seq": r.seq, "prev_hash": r.prev_hash, "body": r.body, "hash": r.hash} for r in new[start - 1 :]
    ]
    conn.execute(insert(audit_records), rows)
    return new


def resign_checkpoints(conn: Connection, recs: list[Record], key: SigningKey) -> None:
    """Replace the stored checkpoints with ones over `recs`, signed with `key`."""
    conn.execute(delete(audit_checkpoints))
    hashes = [r.hash for r in recs]
    for size in range(10, len(recs) + 1, 10):
        cp = Checkpoint.make(log="test-log", size=size, root=root(hashes[:size]))
        conn.execute(
            insert(audit_checkpoints),
            {"size": size, "root": cp.root, "envelope": cp.sign(key), "created_at": _now()},
        )


def _now() -> datetime:
    return datetime.now(UTC)


def problem_of(log: AuditLog, *, extra: Sequence[Path] = ()) -> AuditProblem:
    result = log.verify(extra_checkpoints=extra)
    assert not result.ok and result.problem is not None, "the tampering went unnoticed"
    return result.problem


def test_a_modified_body_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        body = records(conn)[22].body.replace(b"churn", b"fraud")
        conn.execute(update(audit_records).where(audit_records.c.seq == 23).values(body=body))
    p = problem_of(log)
    assert (p.seq, p.kind) == (23, "modified")
    assert p.describe() == "record 23: modified: its contents no longer match its hash"


def test_a_modified_body_with_its_own_hash_recomputed_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        rec = records(conn)[22]
        body = rec.body.replace(b"churn", b"fraud")
        conn.execute(
            update(audit_records)
            .where(audit_records.c.seq == 23)
            .values(body=body, hash=record_hash(23, rec.prev_hash, body))
        )
    p = problem_of(log)
    assert (p.seq, p.kind) == (23, "modified")


def test_a_record_deleted_in_the_middle_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 23))
    p = problem_of(log)
    assert (p.seq, p.kind, p.detail) == (23, "deleted", "record 23 missing")


def test_a_record_deleted_and_the_rest_renumbered_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 23))
        renumber(conn, after=22, by=-1)
    p = problem_of(log)
    assert (p.seq, p.kind) == (23, "deleted")
    assert "renumbered" in p.detail


@pytest.mark.parametrize("rehash", [True, False], ids=["hashed", "garbage-hash"])
def test_an_inserted_record_is_named(log: AuditLog, rehash: bool) -> None:
    with unguarded(log.db) as conn:
        prev = records(conn)[21].hash
        renumber(conn, after=22, by=1)
        body = event(999, actor="mallory").to_json().encode()
        digest = record_hash(23, prev, body) if rehash else bytes(32)
        conn.execute(insert(audit_records), {"seq": 23, "prev_hash": prev, "body": body, "hash": digest})
    p = problem_of(log)
    assert (p.seq, p.kind) == (23, "inserted")


@pytest.mark.parametrize(("a", "b"), [(23, 27), (23, 24)])
def test_two_swapped_records_are_named(log: AuditLog, a: int, b: int) -> None:
    c = audit_records.c
    with unguarded(log.db) as conn:
        conn.execute(update(audit_records).where(c.seq == a).values(seq=-1))
        conn.execute(update(audit_records).where(c.seq == b).values(seq=a))
        conn.execute(update(audit_records).where(c.seq == -1).values(seq=b))
    p = problem_of(log)
    assert (p.seq, p.kind) == (23, "reordered")


def test_a_truncated_tail_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq >= 45))
    p = problem_of(log)
    assert (p.seq, p.kind) == (45, "truncated")
    assert "the log ends at 44 records" in p.detail


def test_a_truncated_tail_is_named_by_the_exported_checkpoint_when_the_stored_ones_go_too(
    log: AuditLog,
) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq >= 45))
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.size >= 45))
    p = problem_of(log)
    assert (p.seq, p.kind) == (45, "truncated")
    assert "000000000050.json" in p.detail


def test_an_emptied_log_is_truncated_from_record_one(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_records))
    p = problem_of(log)
    assert (p.seq, p.kind) == (1, "truncated")


def test_a_consistent_rewrite_is_named_by_the_stored_checkpoints(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        rewrite_from(conn, 23)
    p = problem_of(log)
    # Checkpoint 20 still matches; checkpoint 30 does not: the change is in 21-30.
    assert (p.seq, p.kind) == (21, "rewritten")
    assert "records 21-30" in p.detail


def test_a_consistent_rewrite_with_the_stored_checkpoints_resigned_is_named_by_the_exported_ones(
    log: AuditLog,
) -> None:
    # The attacker holds the server's signing key too: only what was exported holds.
    with unguarded(log.db) as conn:
        resign_checkpoints(conn, rewrite_from(conn, 23), KEY)
    p = problem_of(log)
    assert (p.seq, p.kind) == (21, "rewritten")
    assert "000000000030.json" in p.detail


def test_a_consistent_rewrite_with_the_stored_checkpoints_deleted_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        rewrite_from(conn, 23)
        conn.execute(delete(audit_checkpoints))
    p = problem_of(log)
    assert (p.seq, p.kind) == (21, "rewritten")


def test_a_whole_rewrite_with_every_local_checkpoint_replaced_is_caught_by_one_kept_elsewhere(
    log: AuditLog, tmp_path: Path
) -> None:
    kept = tmp_path / "offsite.json"
    assert log.checkpoint_dir is not None
    shutil.copy(log.checkpoint_dir / "000000000040.json", kept)
    with unguarded(log.db) as conn:
        resign_checkpoints(conn, rewrite_from(conn, 1), KEY)
    shutil.rmtree(log.checkpoint_dir)
    # With the key, the database and the local folder all in hand, the rewrite holds together...
    assert log.verify().ok
    # ...until it meets a checkpoint exported before it.
    p = problem_of(log, extra=[kept])
    assert (p.seq, p.kind) == (1, "rewritten")


def test_a_checkpoint_row_signed_by_another_key_is_named(log: AuditLog) -> None:
    intruder = SigningKey.generate()
    with unguarded(log.db) as conn:
        hashes = [r.hash for r in records(conn)]
        cp = Checkpoint.make(log="test-log", size=25, root=root(hashes[:25]))
        conn.execute(
            insert(audit_checkpoints),
            {"size": 25, "root": cp.root, "envelope": cp.sign(intruder), "created_at": _now()},
        )
    p = problem_of(log)
    assert (p.seq, p.kind) == (25, "checkpoint")
    assert "not among the 1 trusted key" in p.detail


def test_a_checkpoint_row_holding_another_checkpoints_envelope_is_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        row = conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.size == 20)).one()
        conn.execute(
            insert(audit_checkpoints),
            {"size": 25, "root": row.root, "envelope": row.envelope, "created_at": _now()},
        )
    p = problem_of(log)
    assert (p.seq, p.kind) == (25, "checkpoint")
    assert "not what its envelope signs" in p.detail


def test_deleted_checkpoint_rows_are_named(log: AuditLog) -> None:
    with unguarded(log.db) as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.size.in_([10, 30])))
    p = problem_of(log)
    assert (p.seq, p.kind) == (10, "checkpoint")
    assert "deleted or replaced" in p.detail


def test_an_altered_exported_checkpoint_is_named(log: AuditLog) -> None:
    assert log.checkpoint_dir is not None
    path = log.checkpoint_dir / "000000000020.json"
    path.write_bytes(path.read_bytes().replace(b'"sig": "', b'"sig": "AAAA'))
    p = problem_of(log)
    assert p.kind == "checkpoint" and str(path) in p.detail


def test_a_checkpoint_of_another_log_is_named(log: AuditLog, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    with unguarded(log.db) as conn:
        hashes = [r.hash for r in records(conn)]
    other.write_bytes(Checkpoint.make(log="another-log", size=10, root=root(hashes[:10])).sign(KEY))
    p = problem_of(log, extra=[other])
    assert (p.seq, p.kind) == (10, "checkpoint")
    assert "signed for log 'another-log'" in p.detail
