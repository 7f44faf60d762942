"""Chaining records across processes: the intake, and the turns writers take at the chain lock.

The chain makes each record depend on the one before, so positions are handed
out under one lock (SQLite's write transaction; on PostgreSQL an advisory
lock). If every writer held that lock through its own durable commit, writers
of different processes would pay one flush each, in turn. On PostgreSQL an
`append` instead:

1. inserts its events into ``audit_intake``: a plain insert, committed side by
   side with other writers' and without waiting for the disk;
2. calls ``pipewarden_audit_chain`` (a function in the database, made by the
   migration), which takes the lock; if the caller's rows are chained already
   (by whoever held it before), it says where and leaves; if not, it moves
   every pending intake row, from every process, into ``audit_records`` in
   intake order, deleting them from the intake in that same transaction (a row
   is chained exactly once, or stays pending), hashing as `record_hash` does.
   It runs in the server, so a turn at the lock costs no round trip to a
   client, and it commits without waiting for the disk, so the lock passes on
   at once;
3. commits a transaction of its own that waits for the flush, which makes the
   log durable up to and past its records. Those commits, from every process,
   are flushed together, as any concurrent commits are.

A batch of `DIRECT_BATCH` events or more shares one flush already: it is
chained directly, in one transaction under the lock, and written once.

The statements run on the driver's own cursor: with several processes every
statement's overhead counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipewarden.audit._chain import GENESIS, RECORD_DOMAIN, record_hash

__all__ = [
    "DIRECT_BATCH",
    "Chained",
    "chain_in_server",
    "chain_pending",
    "has_pending",
    "make_durable",
    "to_intake",
    "wait_chain_lock",
]

#: Events one append brings from which they are chained directly rather than through the intake.
DIRECT_BATCH = 100
#: Rows per INSERT into audit_records: PostgreSQL takes at most 65,535 parameters in one statement.
_ROWS_PER_STATEMENT = 5000
_HEAD_SQL = (
    "SELECT seq, hash, (SELECT max(size) FROM audit_checkpoints) FROM audit_records ORDER BY seq DESC LIMIT 1"
)
_INSERT_RECORDS = "INSERT INTO audit_records (seq, prev_hash, body, hash, intake_id) VALUES "
# PostgreSQL: the pending intake rows, removed (exactly the rows returned: a row committed after
# the statement began stays for the next chainer), and the head, in one round trip. kind 0 is the
# head (absent in an empty log), kind 1 a pending row.
_DRAIN_AND_HEAD = (
    "WITH pending AS (DELETE FROM audit_intake RETURNING id, body) "
    "SELECT 0, seq, hash, (SELECT max(size) FROM audit_checkpoints) "
    "FROM (SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1) AS head "
    "UNION ALL SELECT 1, id, body, NULL FROM pending"
)
_CHAIN_IN_SERVER = (
    "SELECT intake, seq, digest, checkpointed FROM pipewarden_audit_chain(%s, %s::bigint[], %s)"
)


@dataclass(frozen=True, slots=True)
class Chained:
    """What one chaining transaction wrote: records `first` .. `first + len(hashes) - 1`."""

    first: int = 0
    hashes: tuple[bytes, ...] = ()
    #: The size of the newest checkpoint when it wrote (0 if none).
    checkpointed: int = 0

    @property
    def head(self) -> int:
        return self.first + len(self.hashes) - 1


def wait_chain_lock(cursor: Any, key: int) -> None:
    """PostgreSQL: take the chain lock (advisory `key`) for this transaction, waiting in line for it."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
    cursor.fetchone()


def chain_pending(cursor: Any, bodies: Sequence[bytes], *, postgres: bool) -> Chained:
    """Chain every pending intake row, then `bodies`, onto the head; call only holding the chain lock.

    Returns what was written (nothing when the intake is empty and `bodies` too).
    """
    head: tuple[int, bytes, int] = (0, GENESIS, 0)
    if postgres:
        cursor.execute(_DRAIN_AND_HEAD)
        pending = []
        for kind, number, data, checkpointed in cursor.fetchall():
            if kind == 0:
                head = (int(number), bytes(data), int(checkpointed or 0))
            else:
                pending.append((int(number), bytes(data)))
        pending.sort()
        if not pending and not bodies:
            return Chained()
    else:
        # SQLite: the write transaction holds the only write lock, so nobody adds rows meanwhile.
        cursor.execute("SELECT id, body FROM audit_intake ORDER BY id")
        pending = [(int(i), bytes(b)) for i, b in cursor.fetchall()]
        if not pending and not bodies:
            return Chained()
        if pending:
            cursor.execute("DELETE FROM audit_intake WHERE id <= ?", (pending[-1][0],))
        cursor.execute(_HEAD_SQL)
        row = cursor.fetchone()
        if row is not None:
            head = (int(row[0]), bytes(row[1]), int(row[2] or 0))
    seq, prev, checkpointed = head
    first = seq + 1
    rows: list[tuple[int, bytes, bytes, bytes, int | None]] = []
    for intake_id, body in [*pending, *((None, b) for b in bodies)]:
        seq += 1
        digest = record_hash(seq, prev, body)
        rows.append((seq, prev, body, digest, intake_id))
        prev = digest
    # Without intake rows, the intake_id column is left out (NULL): fewer parameters to send.
    width = 5 if pending else 4
    sql = _INSERT_RECORDS if pending else _INSERT_RECORDS.replace(", intake_id", "")
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = [r[:width] for r in rows[start : start + _ROWS_PER_STATEMENT]]
        if postgres:
            # One statement with every row: psycopg's executemany enters pipeline mode on each
            # call, which costs more than the rows when a transaction holds a few.
            values = ", ".join([f"({', '.join(['%s'] * width)})"] * len(chunk))
            cursor.execute(sql + values, tuple(v for r in chunk for v in r))
        else:
            cursor.executemany(sql + f"({', '.join('?' * width)})", chunk)
    return Chained(first=first, hashes=tuple(r[3] for r in rows), checkpointed=checkpointed)


def to_intake(cursor: Any, bodies: Sequence[bytes]) -> list[int]:
    """PostgreSQL, outside a transaction: insert `bodies` into the intake; their ids, in order.

    The statement commits alone, without waiting for the disk (``set_config(...,
    true)`` holds for its own transaction): the event is promised only once
    chained, and the caller's flush after that covers this insert too.
    """
    values = ", ".join(["(%s)"] * len(bodies))
    sql = (
        f"INSERT INTO audit_intake (body) VALUES {values} "  # noqa: S608  # placeholders only
        "RETURNING id, set_config('synchronous_commit', 'off', true)"
    )
    cursor.execute(sql, tuple(bodies))
    # PostgreSQL evaluates a VALUES list row by row in order, each row's id from the sequence
    # as it goes: ascending ids are the rows in the order given.
    return sorted(int(r[0]) for r in cursor.fetchall())


def chain_in_server(cursor: Any, key: int, ids: Sequence[int]) -> tuple[dict[int, int], Chained]:
    """PostgreSQL, outside a transaction: the positions of intake rows `ids` once chained (by this
    call or an earlier one), and what this call chained. Not yet durable: `make_durable` next."""
    cursor.execute(_CHAIN_IN_SERVER, (key, list(ids), RECORD_DOMAIN))
    wanted = set(ids)
    found: dict[int, int] = {}
    chained: list[tuple[int, bytes, int]] = []
    for intake, seq, digest, checkpointed in cursor.fetchall():
        if int(intake) in wanted:
            found[int(intake)] = int(seq)
        if digest is not None:
            chained.append((int(seq), bytes(digest), int(checkpointed)))
    chained.sort()
    if not chained:
        return found, Chained()
    return found, Chained(
        first=chained[0][0], hashes=tuple(c[1] for c in chained), checkpointed=chained[0][2]
    )


def make_durable(cursor: Any) -> None:
    """PostgreSQL, outside a transaction: return once everything committed so far is on disk.

    A transaction that takes an id writes a commit record, and its commit waits
    for the log to be flushed up to it, past every commit before it.
    """
    cursor.execute("SELECT txid_current()")
    cursor.fetchone()


def has_pending(cursor: Any) -> bool:
    """Whether any intake row waits to be chained (one a crashed writer left, or one in flight)."""
    cursor.execute("SELECT 1 FROM audit_intake LIMIT 1")
    return cursor.fetchone() is not None
