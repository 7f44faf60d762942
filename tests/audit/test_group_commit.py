"""Group commit on SQLite and a real PostgreSQL server: appends that wait together are committed in one
transaction, in the order they arrived, each caller returning only once its own event is durable; a
batch whose commit fails reports the failure to every caller in it and loses nothing already logged."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from pipewarden.audit import AuditLog
from pipewarden.db import LOCK_AUDIT, Database
from pipewarden.errors import PipewardenError
from pipewarden.events import Event
from tests.dbfixtures import new_audit_log

POISON = "poison-pill"
WAIT = 30.0


def event(actor: str, n: int) -> Event:
    return Event(
        action="artifact.read",
        actor=actor,
        resource=f"artifact:churn@{n}",
        outcome="allowed",
        origin="10.0.0.7",
        attributes={"n": n},
    )


@contextlib.contextmanager
def chain_lock_held(database: Database) -> Iterator[None]:
    """Hold what every append must take first (SQLite's write lock; on PostgreSQL the chain's advisory
    lock) from a connection of its own, as a slow writer of another process would."""
    if database.dialect == "sqlite":
        conn = sqlite3.connect(str(database.engine.url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": database.lock_key(LOCK_AUDIT)})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": database.lock_key(LOCK_AUDIT)})
                conn.commit()


class Batches:
    """The batches the log writes (the record count of each transaction it makes), seen by wrapping
    its one writing step; `entered` is set once the first is under way."""

    def __init__(self, log: AuditLog) -> None:
        self.sizes: list[int] = []
        self.entered = threading.Event()
        insert: Callable[..., Any] = log._insert

        def counted(bodies: Any) -> Any:
            self.sizes.append(len(bodies))
            self.entered.set()
            return insert(bodies)

        log._insert = counted  # type: ignore[method-assign]


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the appends did not queue in time"
        time.sleep(0.005)


def append_together(log: AuditLog, database: Database, events: list[Event]) -> list[int | BaseException]:
    """The first event's append leads and waits at the chain lock; the others queue behind it, one at
    a time (so their order is known); then the lock is let go. What each append returned or raised."""
    results: list[int | BaseException] = [0] * len(events)
    batches = Batches(log)

    def append(i: int) -> None:
        try:
            results[i] = log.append(events[i])
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=append, args=(i,)) for i in range(len(events))]
    with chain_lock_held(database):
        threads[0].start()
        assert batches.entered.wait(WAIT)
        for i, thread in enumerate(threads[1:], start=1):
            thread.start()
            until(lambda i=i: len(log._queue) == i)
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert batches.sizes == [1, len(events) - 1]  # the leader alone, then everyone who waited, at once
    return results


def test_appends_that_wait_together_are_one_transaction_in_arrival_order(
    database: Database, tmp_path: Path
) -> None:
    log = new_audit_log(database, tmp_path / "checkpoints")
    log.append(event("before", 0))
    events = [event(f"writer{i}", i) for i in range(6)]
    seqs = append_together(log, database, events)
    assert seqs == [2, 3, 4, 5, 6, 7]
    by_seq = {entry.seq: entry.event for entry in log.records()}
    assert [by_seq[s] for s in seqs if isinstance(s, int)] == events
    assert log.verify().ok


def test_a_failed_batch_is_reported_to_every_caller_and_loses_nothing(
    database: Database, tmp_path: Path
) -> None:
    log = new_audit_log(database, tmp_path / "checkpoints")
    log.append(event("before", 0))
    refuse_poison(database)
    events = [event("leader", 1), event("a", 2), event(POISON, 3), event("b", 4)]
    results = append_together(log, database, events)
    assert results[0] == 2  # its own transaction: logged
    failures = results[1:]
    assert all(isinstance(r, PipewardenError) for r in failures), failures
    assert all("poisoned record" in str(r) for r in failures)
    assert len({id(r) for r in failures}) == len(failures)  # each caller its own exception to raise
    allow_poison(database)
    assert log.append(event("after", 5)) > 2
    logged = [entry.event.actor for entry in log.records()]
    if database.dialect == "sqlite":
        # The failed transaction rolled back whole: none of its events is in the log.
        assert logged == ["before", "leader", "after"]
    else:
        # PostgreSQL: the batch reached the intake before its chaining failed; the next append chains
        # it first, in its order (the log may hold an event whose append failed, never lose one).
        assert logged == ["before", "leader", "a", POISON, "b", "after"]
    assert log.verify().ok


def refuse_poison(database: Database) -> None:
    """A trigger that makes the database refuse one record, as a full disk or a lost connection would
    refuse a whole transaction."""
    with database.transaction() as conn:
        if database.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                    f"WHEN instr(CAST(NEW.body AS TEXT), '{POISON}') > 0 "
                    "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                    f"IF position('{POISON}' in convert_from(NEW.body, 'UTF8')) > 0 THEN "
                    "RAISE EXCEPTION 'poisoned record'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )


def allow_poison(database: Database) -> None:
    with database.transaction() as conn:
        if database.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER poison"))
        else:
            conn.execute(text("DROP TRIGGER poison ON audit_records"))
            conn.execute(text("DROP FUNCTION poison()"))
