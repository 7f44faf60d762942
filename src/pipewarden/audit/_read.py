"""Reading the log back: entries in order, the last few, and a JSON Lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from pipewarden.audit._rows import stream_records
from pipewarden.db import Database, audit_records
from pipewarden.errors import ConfigError, IntegrityError
from pipewarden.events import Event

__all__ = ["Entry", "read_entries", "read_tail", "write_jsonl"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of the log with its event decoded."""

    seq: int
    prev_hash: bytes
    hash: bytes
    event: Event


def _entry(seq: int, prev_hash: bytes, body: bytes, digest: bytes) -> Entry:
    try:
        event = Event.from_json(body, source=f"audit record {seq}")
    except ConfigError as exc:
        raise IntegrityError(f"{exc} (the record is damaged; run 'pipewarden audit verify')") from None
    return Entry(seq=int(seq), prev_hash=bytes(prev_hash), hash=bytes(digest), event=event)


def read_entries(db: Database, *, start: int = 1, end: int | None = None) -> Iterator[Entry]:
    try:
        with db.transaction(write=False) as conn:
            for batch in stream_records(conn, start=max(1, start), end=end):
                for seq, prev_hash, body, digest in batch:
                    yield _entry(seq, bytes(prev_hash), bytes(body), bytes(digest))
    except SQLAlchemyError as exc:
        raise db.error("cannot read the audit log", exc) from None


def read_tail(db: Database, n: int) -> list[Entry]:
    if n < 1:
        return []
    c = audit_records.c
    try:
        with db.transaction(write=False) as conn:
            rows = conn.execute(
                select(c.seq, c.prev_hash, c.body, c.hash).order_by(c.seq.desc()).limit(n)
            ).all()
    except SQLAlchemyError as exc:
        raise db.error("cannot read the audit log", exc) from None
    return [_entry(r[0], bytes(r[1]), bytes(r[2]), bytes(r[3])) for r in reversed(rows)]


def write_jsonl(db: Database, out: IO[bytes], *, start: int = 1) -> int:
    """One line per record: ``{"seq":..,"hash":..,"prev_hash":..,"event":<the body, byte for byte>}``.

    The body is copied, not re-encoded, so a reader can recompute every hash
    from the export alone.
    """
    count = 0
    try:
        with db.transaction(write=False) as conn:
            for batch in stream_records(conn, start=max(1, start)):
                lines = []
                for seq, prev_hash, body, digest in batch:
                    body = bytes(body)
                    try:
                        json.loads(body)
                    except ValueError:
                        raise IntegrityError(
                            f"audit record {seq}: its body is not JSON (the record is damaged; run "
                            "'pipewarden audit verify')"
                        ) from None
                    head = '{"seq":%d,"hash":"%s","prev_hash":"%s","event":' % (  # noqa: UP031  # bytes-exact layout
                        seq,
                        bytes(digest).hex(),
                        bytes(prev_hash).hex(),
                    )
                    lines.append(head.encode() + body + b"}\n")
                out.write(b"".join(lines))
                count += len(lines)
    except SQLAlchemyError as exc:
        raise db.error("cannot read the audit log", exc) from None
    return count
