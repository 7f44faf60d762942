"""The audit log page: records newest first, filtered, a page at a time.

A page is read backwards from a position (``before``) in chunks until it holds `size` matching records
or `scan` records were looked at, so a filter that matches rarely costs a bounded read per page; the
next page starts where this one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipewarden.errors import ConfigError

if TYPE_CHECKING:
    from pipewarden.audit import AuditLog, Entry

__all__ = ["Filters", "LogPage", "read_page"]

_CHUNK = 200
OUTCOMES = ("allowed", "denied", "error")


@dataclass(frozen=True, slots=True)
class Filters:
    actor: str = ""
    action: str = ""
    outcome: str = ""

    def __post_init__(self) -> None:
        if self.outcome and self.outcome not in OUTCOMES:
            raise ConfigError(f"outcome {self.outcome!r:.40}: one of {', '.join(OUTCOMES)}")
        if len(self.actor) > 256 or len(self.action) > 128:
            raise ConfigError("actor: at most 256 characters; action: at most 128")

    def keep(self, entry: Entry) -> bool:
        e = entry.event
        return (
            (not self.actor or e.actor == self.actor)
            and (not self.action or e.action == self.action)
            and (not self.outcome or e.outcome == self.outcome)
        )

    @property
    def active(self) -> bool:
        return bool(self.actor or self.action or self.outcome)


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: tuple[Entry, ...]
    #: Where the next (older) page starts (its ``before``), or None at the start of the log.
    older: int | None
    scanned: int
    head: int


def read_page(
    log: AuditLog, *, before: int | None, filters: Filters, size: int = 50, scan: int = 5000
) -> LogPage:
    """Up to `size` records matching `filters` before position `before` (the head if None), newest
    first, looking at no more than `scan` records."""
    tail = log.tail(1)
    head = tail[-1].seq if tail else 0
    hi = head if before is None else min(before - 1, head)
    found: list[Entry] = []
    scanned = 0
    lowest = hi + 1
    while hi >= 1 and len(found) < size and scanned < scan:
        lo = max(1, hi - _CHUNK + 1)
        for entry in reversed(list(log.records(lo, hi))):
            scanned += 1
            lowest = entry.seq
            if filters.keep(entry):
                found.append(entry)
                if len(found) == size:
                    break
        else:
            lowest = lo  # the whole chunk was looked at (records missing from a damaged log too)
        hi = lowest - 1
    return LogPage(tuple(found), lowest if lowest > 1 else None, scanned, head)
