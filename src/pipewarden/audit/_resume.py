"""Where a process's next checkpoint starts: the Merkle frontier stored with a signed checkpoint.

Every checkpoint row keeps the frontier at its size (one subtree head per
binary digit of the size). A new process, which has seen no records, starts
its first checkpoint from the newest stored frontier plus the records after
it, instead of re-reading and re-hashing the whole log: every CLI command is
a new process that signs a checkpoint at exit when it appended.

The frontier is not signed, so it is used only when it folds to the root that
the checkpoint's signature covers; finding another list of subtree heads that
folds to the same root would take a SHA-256 collision. A frontier that does
not is passed over (and `verify` names it), and the records are read instead.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from pipewarden.audit._checkpoint import Checkpoint
from pipewarden.audit._frontier import Frontier
from pipewarden.crypto import TrustedKeys
from pipewarden.db import audit_checkpoints, audit_records
from pipewarden.errors import IntegrityError

__all__ = ["stored_frontier"]

logger = logging.getLogger(__name__)

#: Stored checkpoints tried, newest first, before reading the records instead.
_TRIES = 3


def stored_frontier(
    conn: Connection, *, above: int, upto: int, log_id: str, trusted: TrustedKeys
) -> tuple[Frontier, bytes] | None:
    """The newest stored frontier of a size in (`above`, `upto`] that matches its signed checkpoint.

    Returns it with the hash of the record at its size (where the next record
    must chain on), or None when no stored checkpoint there has one to trust.
    """
    k = audit_checkpoints.c
    rows = conn.execute(
        select(k.size, k.envelope, k.frontier)
        .where(k.size > above, k.size <= upto, k.frontier.is_not(None))
        .order_by(k.size.desc())
        .limit(_TRIES)
    ).all()
    for size, envelope, blob in rows:
        label = f"checkpoint {size} (database)"
        try:
            cp = Checkpoint.open(bytes(envelope), trusted=trusted, label=label)
            frontier = Frontier.from_bytes(int(size), bytes(blob))
        except (IntegrityError, ValueError) as exc:
            logger.warning("audit log %s: %s: not a starting point (%s)", log_id, label, exc)
            continue
        if cp.log != log_id or cp.size != size or frontier.root() != cp.root:
            logger.warning(
                "audit log %s: %s: the frontier stored with it does not give its signed head; "
                "not a starting point (run 'pipewarden audit verify')",
                log_id,
                label,
            )
            continue
        last = conn.execute(select(audit_records.c.hash).where(audit_records.c.seq == size)).scalar()
        if last is None:
            continue  # the record is gone: reading from an earlier point finds and names the gap
        return frontier, bytes(last)
    return None
