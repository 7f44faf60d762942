"""The log's id, kept in the database: every process and replica writing it names the same log.

Every checkpoint names the log it belongs to, so a checkpoint of one log never
passes for another's. The id is made once, on first use, by whichever process
comes first (on PostgreSQL INSERT ... ON CONFLICT DO NOTHING, on SQLite an
insert inside the exclusive write transaction after finding none; then read
back, so two racing processes agree), in a one-row table the database keeps append-only. An
attacker who rewrites it anyway makes every checkpoint signed before, in the
database and exported, name another log: `verify` fails on them.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import SQLAlchemyError

from pipewarden.db import Database, audit_log_info
from pipewarden.errors import IntegrityError

__all__ = ["LOG_ID", "database_log_id"]

#: What a log id may be: it is printed, and named in file contents and messages.
LOG_ID = re.compile(r"[\w.:-]{1,128}")


def database_log_id(db: Database) -> str:
    """The audit log id of `db`, made on first use (``pipewarden-audit-<32 hex digits>``).

    >>> database_log_id(Database.open("sqlite:////tmp/pw.db"))
    'pipewarden-audit-9b1e...'
    """
    t = audit_log_info.c
    query = select(t.log_id).where(t.id == 1)
    try:
        with db.transaction(write=False) as conn:
            found = conn.execute(query).scalar()
        if found is None:
            made = {
                "id": 1,
                "log_id": f"pipewarden-audit-{secrets.token_hex(16)}",
                "created_at": datetime.now(UTC),
            }
            with db.transaction(write=True) as conn:
                if db.dialect == "postgresql":
                    conn.execute(postgresql_insert(audit_log_info).values(made).on_conflict_do_nothing())
                elif conn.execute(query).scalar() is None:
                    # SQLite's write transaction is exclusive: nobody can insert between this read and
                    # the insert (and the table's REPLACE guard refuses even a no-op conflict clause).
                    conn.execute(audit_log_info.insert().values(made))
                found = conn.execute(query).scalar_one()
    except SQLAlchemyError as exc:
        raise db.error("cannot read the audit log id", exc) from None
    if not isinstance(found, str) or not LOG_ID.fullmatch(found):
        raise IntegrityError(
            f"database {db.label}: the audit log id {str(found)[:40]!r} is not one pipewarden makes; "
            "the table audit_log_info was altered"
        )
    return found
