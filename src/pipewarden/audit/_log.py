"""The audit log: events appended durably to a hash chain in the database, under signed checkpoints.

Many threads of one process, several processes and several server replicas
append to one log. Positions are handed out inside the chain lock (SQLite's
write transaction; a PostgreSQL advisory lock), reading the head in the same
locked transaction, so two writers can never take the same position or chain
onto the same record. Concurrent appends are committed together (group
commit): within a process, one caller leads and writes what every waiting
caller brought in one transaction; across PostgreSQL processes, appends go
through the intake, whoever takes the chain lock chains every process's
pending events at once, in the database, and the writers' durable commits are
flushed together (_intake.py). So a busy log pays for one flush per batch
instead of one per event, and each caller still returns only once its own
record is chained and durable.

At every multiple of `checkpoint_every` records, and after `checkpoint_interval`
seconds, the log signs its tree head (a `Checkpoint`) and stores it in the
database, with the Merkle frontier at that size, and as a file in
`checkpoint_dir`; see docs/audit.md for what that buys against an attacker.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import SQLAlchemyError

from pipewarden.audit._chain import GENESIS
from pipewarden.audit._checkpoint import Checkpoint
from pipewarden.audit._export import export_checkpoint
from pipewarden.audit._frontier import Frontier
from pipewarden.audit._intake import (
    DIRECT_BATCH,
    Chained,
    chain_in_server,
    chain_pending,
    has_pending,
    make_durable,
    to_intake,
    wait_chain_lock,
)
from pipewarden.audit._proof import make_proof
from pipewarden.audit._read import Entry, read_entries, read_tail, write_jsonl
from pipewarden.audit._resume import stored_frontier
from pipewarden.audit._verify import AuditVerification, catch_up, verify_log
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.db import LOCK_AUDIT, Database, audit_checkpoints, audit_records
from pipewarden.errors import ConfigError, IntegrityError, PipewardenError
from pipewarden.events import Event

__all__ = ["AuditLog"]

logger = logging.getLogger(__name__)

#: The most records one caller group brings to a transaction; a bigger group waits for the next one.
_MAX_BATCH = 5000


@dataclass(slots=True)
class _Request:
    """Records one caller brought, and what became of them (set by whichever thread wrote them)."""

    bodies: list[bytes]
    seqs: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class AuditLog:
    """The tamper-evident event log of one deployment, in its database.

    >>> log = AuditLog(db, signing_key=key, trusted=TrustedKeys([key.public], source="me"),
    ...                log_id="ws-1", checkpoint_dir=Path("audit/checkpoints"))
    >>> seq = log.append(Event(action="auth.login", actor="ada", resource="user:ada", outcome="allowed"))
    >>> log.verify().ok
    True
    """

    def __init__(
        self,
        db: Database,
        *,
        signing_key: SigningKey,
        trusted: TrustedKeys,
        log_id: str,
        checkpoint_dir: Path | None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 60.0,
    ) -> None:
        if not isinstance(log_id, str) or not log_id.strip():
            raise ConfigError(f"audit log id {log_id!r} is empty; checkpoints must name their log")
        if checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every {checkpoint_every} must be at least 1")
        if not checkpoint_interval > 0:
            raise ConfigError(f"checkpoint_interval {checkpoint_interval} must be more than 0 seconds")
        if signing_key.keyid not in trusted:
            # Its own checkpoints would fail verification: a configuration error, found now.
            raise ConfigError(
                f"audit log {log_id}: the signing key {signing_key.keyid} is not among the keys "
                f"trusted for its checkpoints ({trusted.source})"
            )
        self.db = db
        self.log_id = log_id
        self.trusted = trusted
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self._key = signing_key
        # Group commit: callers queue requests; at most one thread writes at a time.
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._writing = False
        # The tree head of the records this process knows, for checkpoints without re-reading.
        self._frontier_lock = threading.Lock()
        self._frontier = Frontier()
        self._frontier_last = GENESIS
        self._checkpoint_lock = threading.Lock()
        self._last_checkpoint_time = time.monotonic()
        self._appended_since_checkpoint = False
        # Counts this process's appends: a checkpoint clears the flag above only if none came after the
        # head it signed (an append racing a checkpoint must still get the closing one).
        self._appends = 0

    def __repr__(self) -> str:
        return f"AuditLog({self.log_id!r}, {self.db.label})"

    # --- appending -------------------------------------------------------------------------------

    def append(self, event: Event) -> int:
        """Append one event and return its position once it is committed (it survives a crash).

        Calls from several threads at once are written in one transaction (one
        flush), in the order they arrived; if that transaction fails, every call
        in it raises the failure (on SQLite none of its events is logged). On
        PostgreSQL, an append that raises after its event reached the intake
        (the connection lost while waiting) leaves it for the next writer to
        chain: the log can hold an event whose append failed, never lose one
        whose append returned.
        """
        return self._submit([event.to_json().encode()])[0]

    def append_many(self, events: Iterable[Event]) -> list[int]:
        """Append events in order in one transaction; their positions, once all are committed."""
        bodies = [event.to_json().encode() for event in events]
        if not bodies:
            return []
        return self._submit(bodies)

    def _submit(self, bodies: list[bytes]) -> list[int]:
        request = _Request(bodies)
        due = False
        with self._cond:
            self._queue.append(request)
        while True:
            with self._cond:
                while self._writing and not request.done:
                    self._cond.wait()
                if request.done:
                    break
                # Lead: write what is queued (oldest first); if this request did not fit, lead again.
                self._writing = True
                batch = self._take_batch()
            try:
                due = self._write(batch) or due
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if request.error is not None:
            raise _own_copy(request.error)
        if due:
            self._checkpoint_quietly()
        return request.seqs

    def _take_batch(self) -> list[_Request]:
        """Queued requests up to `_MAX_BATCH` records (always at least one request). Holds `_cond`."""
        batch: list[_Request] = []
        count = 0
        while self._queue and (not batch or count + len(self._queue[0].bodies) <= _MAX_BATCH):
            request = self._queue.pop(0)
            batch.append(request)
            count += len(request.bodies)
        return batch

    def _write(self, batch: list[_Request]) -> bool:
        """Commit every record of `batch`; mark each request done. Is a checkpoint due?"""
        try:
            seqs, chained = self._insert([b for r in batch for b in r.bodies])
        except BaseException as exc:
            error = self._error(exc)
            for request in batch:
                request.error, request.done = error, True
            return False
        at = 0
        for request in batch:
            request.seqs = seqs[at : at + len(request.bodies)]
            at += len(request.bodies)
            request.done = True
        self._appended_since_checkpoint = True
        self._appends += 1
        due = time.monotonic() - self._last_checkpoint_time >= self.checkpoint_interval
        if chained.hashes:
            self._extend_frontier(chained.first, chained.hashes)
            # Due on the transaction whose records pass a multiple of checkpoint_every: one
            # writer of all those appending signs it. Twice that since the newest checkpoint
            # means the one due was lost (its writer died first).
            every = self.checkpoint_every
            due = due or (chained.first - 1) // every != chained.head // every
            due = due or chained.head - chained.checkpointed >= 2 * every
        return due

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, SQLAlchemyError | self.db.engine.dialect.loaded_dbapi.Error):
            return self.db.error(f"audit log {self.log_id}: cannot append", exc)
        return exc

    def _insert(self, bodies: Sequence[bytes]) -> tuple[list[int], Chained]:
        """Chain `bodies` (after any pending intake rows); their positions once durable, and what this
        process chained (nothing, when another process chained them): _intake.py."""
        if self.db.dialect != "postgresql" or len(bodies) >= DIRECT_BATCH:
            # SQLite: its commits cannot overlap, so the intake would only add work. A big batch:
            # its events share one flush already, and are written once.
            with self.db.transaction(write=True) as conn:
                cursor = _cursor(conn)
                try:
                    if self.db.dialect == "postgresql":
                        wait_chain_lock(cursor, self.db.lock_key(LOCK_AUDIT))
                    chained = chain_pending(cursor, bodies, postgres=self.db.dialect == "postgresql")
                finally:
                    cursor.close()
            return list(range(chained.head - len(bodies) + 1, chained.head + 1)), chained
        with self.db.engine.connect() as conn, _autocommit(conn) as cursor:
            ids = to_intake(cursor, bodies)
            found, chained = chain_in_server(cursor, self.db.lock_key(LOCK_AUDIT), ids)
            make_durable(cursor)
        if len(found) < len(ids):
            lost = [i for i in ids if i not in found]
            raise IntegrityError(
                f"audit log {self.log_id}: intake rows {lost[:5]} were removed without being chained "
                "(someone deleted them in the database); the events were not logged"
            )
        return [found[i] for i in ids], chained

    def _drain(self) -> bool:
        """Chain the intake rows a writer left when it died before they were chained; any?"""
        postgres = self.db.dialect == "postgresql"
        try:
            with self.db.transaction(write=False) as conn:
                cursor = _cursor(conn)
                try:
                    if not has_pending(cursor):
                        return False
                finally:
                    cursor.close()
            if postgres:
                with self.db.engine.connect() as conn, _autocommit(conn) as cursor:
                    _, chained = chain_in_server(cursor, self.db.lock_key(LOCK_AUDIT), ())
                    make_durable(cursor)
            else:
                with self.db.transaction(write=True) as conn:
                    cursor = _cursor(conn)
                    try:
                        chained = chain_pending(cursor, (), postgres=False)
                    finally:
                        cursor.close()
        except (SQLAlchemyError, self.db.engine.dialect.loaded_dbapi.Error) as exc:
            raise self.db.error(f"audit log {self.log_id}: cannot chain the pending events", exc) from None
        if not chained.hashes:
            return False
        logger.info("audit log %s: chained %d pending events", self.log_id, len(chained.hashes))
        self._extend_frontier(chained.first, chained.hashes)
        self._appended_since_checkpoint = True
        self._appends += 1
        return True

    def _extend_frontier(self, first: int, hashes: Sequence[bytes]) -> None:
        """Add this process's own new records to the tree head when nobody else wrote in between.

        Otherwise the next checkpoint reads (and checks) what others appended; a
        checkpoint in progress holds the frontier, and then this is skipped too.
        """
        if not self._frontier_lock.acquire(blocking=False):
            return
        try:
            if self._frontier.size == first - 1:
                for digest in hashes:
                    self._frontier.add(digest)
                self._frontier_last = hashes[-1]
        finally:
            self._frontier_lock.release()

    # --- checkpoints -----------------------------------------------------------------------------

    def _checkpoint_quietly(self) -> None:
        """A checkpoint due at append time; the records are committed already, so a failure is logged."""
        if not self._checkpoint_lock.acquire(blocking=False):
            return  # another thread of this process is making one
        try:
            self._make_checkpoint()
        except PipewardenError as exc:
            logger.error("audit log %s: no checkpoint made: %s", self.log_id, exc)
        finally:
            self._checkpoint_lock.release()

    def checkpoint(self) -> Checkpoint | None:
        """Sign the tree head over every record committed now, store it and export it; None if empty.

        Raises `IntegrityError` when the records it would sign do not chain (it
        never signs a tampered log).
        """
        with self._checkpoint_lock:
            return self._make_checkpoint()

    def _make_checkpoint(self) -> Checkpoint | None:
        with self._frontier_lock:
            try:
                with self.db.transaction(write=False) as conn:
                    head, _ = _head(conn)
                    if head == 0:
                        return None
                    start, last = self._frontier, self._frontier_last
                    if start.size < head:
                        # A newer stored checkpoint than what this process has seen: start from it.
                        resumed = stored_frontier(
                            conn, above=start.size, upto=head, log_id=self.log_id, trusted=self.trusted
                        )
                        if resumed is not None:
                            start, last = resumed
                    frontier, last = catch_up(conn, start, last, upto=head, label=self.log_id)
            except SQLAlchemyError as exc:
                raise self.db.error(
                    f"audit log {self.log_id}: cannot read the records to sign", exc
                ) from None
            self._frontier, self._frontier_last = frontier, last
            appends_signed = self._appends
            cp = Checkpoint.make(log=self.log_id, size=head, root=frontier.root())
            # Now: once the lock is released, appends of this process extend the same frontier.
            blob = frontier.to_bytes()
        envelope = cp.sign(self._key)
        try:
            with self.db.transaction(write=True) as conn:
                self.db.lock(conn, LOCK_AUDIT)
                newest = conn.execute(select(func.max(audit_checkpoints.c.size))).scalar() or 0
                stored = newest < head
                if stored:
                    conn.execute(
                        audit_checkpoints.insert(),
                        {
                            "size": head,
                            "root": cp.root,
                            "envelope": envelope,
                            "created_at": _now(),
                            "frontier": blob,
                        },
                    )
        except SQLAlchemyError as exc:
            raise self.db.error(f"audit log {self.log_id}: cannot store checkpoint {head}", exc) from None
        self._last_checkpoint_time = time.monotonic()
        if self._appends == appends_signed:
            self._appended_since_checkpoint = False
        if not stored:
            return None  # another writer signed this head or a later one already
        # The database first, then the file: a file whose checkpoint is not in the database
        # means one was deleted there, so the reverse order would make a crash look like tampering.
        # The row's commit waited for the flush, which covers every record it signs (the chain
        # function commits without waiting): no file signs records a crash could still take.
        if self.checkpoint_dir is not None:
            export_checkpoint(self.checkpoint_dir, head, envelope)
        logger.info("audit log %s: checkpoint at %d records", self.log_id, head)
        return cp

    def close(self) -> None:
        """Chain any events left pending by a writer that died; sign a last checkpoint if this process
        appended (or chained) since the last one."""
        self._drain()
        if self._appended_since_checkpoint:
            self.checkpoint()

    # --- reading and checking --------------------------------------------------------------------

    def verify(
        self,
        *,
        progress: Callable[[int], None] | None = None,
        extra_checkpoints: Sequence[Path] = (),
    ) -> AuditVerification:
        """Check the whole log: the chain, every stored checkpoint, and the exported ones.

        Returns a verdict whose `.ok` is False and whose `.problem` names the
        first bad record and how it is bad (modified, deleted, inserted,
        reordered, truncated, rewritten) or the checkpoint that is wrong. Events
        a dead writer left in the intake are chained first.
        """
        self._drain()
        return verify_log(
            self.db,
            log_id=self.log_id,
            trusted=self.trusted,
            checkpoint_dir=self.checkpoint_dir,
            extra=extra_checkpoints,
            progress=progress,
        )

    def records(self, start: int = 1, end: int | None = None) -> Iterator[Entry]:
        """The entries from position `start` to `end` (inclusive; the head if None), in order."""
        return read_entries(self.db, start=start, end=end)

    def tail(self, n: int = 10) -> list[Entry]:
        """The last `n` entries, oldest first."""
        return read_tail(self.db, n)

    def export_jsonl(self, out: IO[bytes], *, start: int = 1) -> int:
        """Write one JSON object per record (seq, hash, prev_hash, event) from `start`; how many."""
        return write_jsonl(self.db, out, start=start)

    def proof(self, seq: int) -> dict[str, Any]:
        """A self-contained inclusion proof of record `seq` against the newest checkpoint covering it.

        Anyone holding the log's public key checks it with `verify_proof`. A record
        newer than every checkpoint gets one signed first.
        """
        doc = make_proof(self.db, seq=seq, log_id=self.log_id, trusted=self.trusted)
        if doc is None:
            self.checkpoint()
            doc = make_proof(self.db, seq=seq, log_id=self.log_id, trusted=self.trusted)
        if doc is None:
            raise ConfigError(f"audit record {seq}: no checkpoint covers it")
        return doc


@contextmanager
def _autocommit(conn: Connection) -> Iterator[Any]:
    """The driver's cursor outside any transaction: each statement commits alone (PostgreSQL)."""
    raw: Any = conn.connection.dbapi_connection
    raw.autocommit = True
    cursor = raw.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
        raw.autocommit = False


def _own_copy(error: BaseException) -> BaseException:
    """The batch's error for one of its callers: every caller raises an object of its own (one
    exception raised in several threads at once would gather all their tracebacks)."""
    try:
        mine = copy.copy(error)
    except Exception:  # an exception that cannot be copied is raised as it is
        return error
    mine.__cause__, mine.__context__ = error.__cause__, error.__context__
    return mine


def _cursor(conn: Connection) -> Any:
    """The driver's own cursor of the transaction's connection."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _head(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(
        select(audit_records.c.seq, audit_records.c.hash).order_by(audit_records.c.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))


def _now() -> datetime:
    return datetime.now(UTC)
