"""The intake: events waiting to be chained, from writers of several processes, on both databases.

A PostgreSQL append puts its events in audit_intake, then takes its turn at the
chain lock in the database's chain function: whoever holds it chains every
pending row. These tests hold the chain lock themselves, as another process in
the middle of chaining does, so writers wait with their events in the intake.
An intake row whose writer died is chained by the next append, `verify` or
`close`, once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, func, insert, select

from pipewarden.audit import GENESIS, AuditLog, record_hash
from pipewarden.audit._intake import DIRECT_BATCH
from pipewarden.db import LOCK_AUDIT, Database, audit_intake, audit_records
from pipewarden.errors import IntegrityError
from pipewarden.events import Event
from tests.audit.test_log import event, open_log
from tests.audit.test_log_processes import start_writer


def intake_ids(database: Database) -> list[int]:
    with database.transaction(write=False) as conn:
        return [int(i) for i in conn.execute(select(audit_intake.c.id).order_by(audit_intake.c.id)).scalars()]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition` holds; a generous limit so a broken writer fails the test, not hangs it."""
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def leave_in_intake(database: Database, *events: Event) -> list[int]:
    """Insert events into the intake as a writer that died right after its intake commit leaves them."""
    with database.transaction() as conn:
        for e in events:
            conn.execute(insert(audit_intake).values(body=e.to_json().encode()))
    return intake_ids(database)


@contextmanager
def chain_lock_held(database: Database) -> Iterator[Connection]:
    """Hold the chain lock, as another process in the middle of chaining does."""
    with database.transaction() as conn:
        database.lock(conn, LOCK_AUDIT)
        yield conn


@pytest.fixture
def pg_database(database: Database) -> Database:
    if database.dialect != "postgresql":
        pytest.skip("SQLite chains every append under its write lock; only PostgreSQL writers use the intake")
    return database


class Writer(threading.Thread):
    """One append (or append_many) on its own thread: what it returned, or raised."""

    def __init__(self, log: AuditLog, *events: Event) -> None:
        super().__init__()
        self.log, self.events = log, list(events)
        self.result: list[int] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.log.append_many(self.events)
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> list[int]:
        self.join(timeout=120)
        assert not self.is_alive(), "the writer never returned"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def positions(log: AuditLog) -> dict[str, int]:
    """Each event's position, by its canonical JSON."""
    return {e.event.to_json(): e.seq for e in log.records()}


def intake_of(database: Database) -> dict[int, int]:
    """Each chained record's intake id, by position."""
    c = audit_records.c
    with database.transaction(write=False) as conn:
        rows = conn.execute(select(c.seq, c.intake_id).where(c.intake_id.is_not(None))).all()
    return {int(seq): int(intake) for seq, intake in rows}


def test_an_event_left_in_the_intake_is_chained_before_the_next_append(
    database: Database, tmp_path: Path
) -> None:
    log = open_log(database, tmp_path)
    log.append_many([event(i) for i in range(3)])
    orphan = event(100, actor="crashed-writer")
    [orphan_id] = leave_in_intake(database, orphan)
    mine = event(101)
    assert log.append(mine) == 5
    earlier = [e.event for e in log.records(end=3)]
    assert positions(log) == {
        **{e.to_json(): i + 1 for i, e in enumerate(earlier)},
        orphan.to_json(): 4,
        mine.to_json(): 5,
    }
    assert intake_ids(database) == []
    assert intake_of(database).get(4) == orphan_id
    assert log.verify().ok


@pytest.mark.parametrize("chainer", ["verify", "close"])
def test_an_event_left_in_the_intake_is_chained_by_verify_or_close(
    database: Database, tmp_path: Path, chainer: str
) -> None:
    open_log(database, tmp_path).append_many([event(i) for i in range(3)])
    left = [event(200, actor="crashed-writer"), event(201, actor="crashed-writer")]
    leave_in_intake(database, *left)
    fresh = open_log(database, tmp_path)  # a process that appends nothing itself
    if chainer == "verify":
        result = fresh.verify()
        assert result.ok and result.records == 5
    else:
        fresh.close()  # chains them and signs a checkpoint over them
        assert fresh.verify().records == 5
        assert fresh.checkpoint_dir is not None
        assert (fresh.checkpoint_dir / "000000000005.json").is_file()
    found = positions(fresh)
    assert (found[left[0].to_json()], found[left[1].to_json()]) == (4, 5)  # in intake order
    assert intake_ids(database) == []
    # Nothing is pending any more: a second pass chains nothing, twice nothing.
    assert fresh.verify().records == 5


def test_a_waiting_writer_goes_through_the_intake_and_gets_its_positions(
    pg_database: Database, tmp_path: Path
) -> None:
    database = pg_database
    log = open_log(database, tmp_path)
    log.append_many([event(i) for i in range(2)])
    # Two writers of two processes (two logs) find the lock held: both leave their events in the intake.
    first, second = open_log(database, tmp_path), open_log(database, tmp_path)
    mine = [event(300), event(301), event(302)]
    theirs = event(400, actor="other-process")
    with chain_lock_held(database):
        writers = [Writer(first, *mine), Writer(second, theirs)]
        for w in writers:
            w.start()
        wait_for(lambda: len(intake_ids(database)) == 4, "both writers' events in the intake")
        assert all(w.is_alive() for w in writers), "a writer returned before its events were chained"
    # One of them chains all four; the other finds its own already chained by it.
    got_mine, got_theirs = writers[0].outcome(), writers[1].outcome()
    found = positions(log)
    assert got_mine == [found[e.to_json()] for e in mine] and got_mine == sorted(got_mine)
    assert got_theirs == [found[theirs.to_json()]]
    assert sorted(got_mine + got_theirs) == [3, 4, 5, 6]
    assert {3, 4, 5, 6} <= set(intake_of(database))
    assert intake_ids(database) == []
    assert log.verify().ok


def test_an_intake_row_deleted_before_it_was_chained_fails_the_append(
    pg_database: Database, tmp_path: Path
) -> None:
    database = pg_database
    log = open_log(database, tmp_path)
    log.append(event(1))
    with chain_lock_held(database):
        writer = Writer(open_log(database, tmp_path), event(2, actor="vanishing"))
        writer.start()
        wait_for(lambda: len(intake_ids(database)) == 1, "the event in the intake")
        # The intake is not part of the tamper-evident log: someone with database access can delete
        # from it. The writer must not report its event as logged.
        with database.transaction() as other:
            other.execute(delete(audit_intake))
    with pytest.raises(IntegrityError, match=r"were removed without being chained .* were not logged"):
        writer.outcome()
    assert [e.event.actor for e in log.records()] == ["ada"]


@pytest.mark.parametrize("next_step", ["append", "verify"])
def test_a_writer_killed_after_its_intake_commit_loses_and_duplicates_nothing(
    pg_database: Database, database_url: str, tmp_path: Path, next_step: str
) -> None:
    database = pg_database
    log = open_log(database, tmp_path)
    log.append(event(1))
    with chain_lock_held(database):
        proc = start_writer(database_url, tmp_path, tag="killed", count=1, threads=1)
        wait_for(lambda: len(intake_ids(database)) == 1, "the writer's event in the intake")
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert out == "", "the writer returned from append while its event was only in the intake"
    if next_step == "append":
        assert log.append(event(2)) == 3
    result = log.verify()
    assert result.ok, result.problem
    actors = [e.event.actor for e in log.records()]
    assert actors.count("killed") == 1
    assert actors[1] == "killed"  # chained before anything appended after it
    assert intake_ids(database) == []


def test_sqlite_writers_never_use_the_intake(database: Database, tmp_path: Path) -> None:
    """SQLite commits cannot overlap, so every append chains under the write lock directly."""
    if database.dialect != "sqlite":
        pytest.skip("SQLite only")
    log = open_log(database, tmp_path)
    start = threading.Barrier(4)
    results: list[Any] = []

    def write(t: int) -> None:
        start.wait()
        results.extend(log.append(event(10 * t + i)) for i in range(10))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == list(range(1, 41))
    assert intake_of(database) == {}
    with database.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(audit_intake)).scalar_one() == 0


def test_a_big_batch_chains_pending_intake_rows_before_its_own(pg_database: Database, tmp_path: Path) -> None:
    """A batch of DIRECT_BATCH events or more is chained in one transaction, after what is pending."""
    database = pg_database
    log = open_log(database, tmp_path)
    small = event(1, actor="small-writer")
    batch = [event(100 + i, actor="batch-writer") for i in range(DIRECT_BATCH + 20)]
    with chain_lock_held(database):
        first = Writer(open_log(database, tmp_path), small)
        first.start()
        wait_for(lambda: len(intake_ids(database)) == 1, "the small append in the intake")
        second = Writer(open_log(database, tmp_path), *batch)
        second.start()
    [small_at] = first.outcome()
    batch_at = second.outcome()
    # Whichever took the lock first, the event waiting in the intake comes before the batch.
    assert small_at == 1 and batch_at == list(range(2, len(batch) + 2))
    assert intake_of(database) == {1: intake_of(database)[1]}  # the batch went in directly
    found = positions(log)
    assert [found[e.to_json()] for e in batch] == batch_at
    assert log.verify().ok


def test_hashes_made_in_the_database_are_the_ones_pipewarden_makes(
    database: Database, tmp_path: Path
) -> None:
    """The chain function's SHA-256 input, byte for byte, is record_hash's (PostgreSQL), on any body."""
    log = open_log(database, tmp_path)
    odd = [
        Event(action="data.check", actor="ada", resource="dataset:über-daten", outcome="allowed"),
        Event(
            action="data.check",
            actor="李",
            resource="dataset:🙂",
            outcome="denied",
            attributes={"q": "'\\\x00\""},
        ),
        Event(action="data.check", actor="ada", resource="x" * 1000, outcome="error"),
    ]
    seqs = [log.append(e) for e in odd]
    entries = list(log.records())
    assert [e.seq for e in entries] == seqs == [1, 2, 3]
    prev = GENESIS
    for entry, sent in zip(entries, odd, strict=True):
        assert entry.event == sent and entry.prev_hash == prev
        assert entry.hash == record_hash(entry.seq, prev, sent.to_json().encode())
        prev = entry.hash
    assert log.verify().ok
