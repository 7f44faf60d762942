"""Reading audit records fast: the driver's own cursor in big batches, not one ORM row at a time.

Verification has to keep up with hundreds of thousands of records a second;
SQLAlchemy's row objects cost more than the hashing. PostgreSQL gets a
server-side (named) cursor so a long log streams in constant memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

__all__ = ["BATCH", "RecordRow", "stream_records"]

#: Rows fetched per round trip.
BATCH = 20_000
_numbers = itertools.count(1)

#: (seq, prev_hash, body, hash)
RecordRow = tuple[int, bytes, bytes, bytes]


def stream_records(
    conn: Connection, *, start: int = 1, end: int | None = None, columns: str = "seq, prev_hash, body, hash"
) -> Iterator[list[Any]]:
    """Batches of rows of `columns`, ordered by position, from `start` to `end` (inclusive)."""
    raw: Any = conn.connection.dbapi_connection
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    if not postgres:
        # SQLite keeps whatever type a value was written with: a body edited with SQL string
        # functions comes back as text. Read every column as the type it must be.
        columns = ", ".join(
            f"CAST({c} AS INTEGER)" if c == "seq" else f"CAST({c} AS BLOB)"
            for c in (c.strip() for c in columns.split(","))
        )
    sql = f"SELECT {columns} FROM audit_records WHERE seq >= {mark}"  # noqa: S608  # fixed column lists from this package, never user input
    params: tuple[int, ...] = (start,)
    if end is not None:
        sql += f" AND seq <= {mark}"
        params = (start, end)
    sql += " ORDER BY seq"
    # PostgreSQL: a server-side cursor in the binary protocol (bytea arrives as bytes, not hex text).
    cursor = raw.cursor(name=f"pipewarden_audit_{next(_numbers)}", binary=True) if postgres else raw.cursor()
    try:
        if postgres:
            cursor.itersize = BATCH
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                return
            yield rows
    finally:
        cursor.close()
