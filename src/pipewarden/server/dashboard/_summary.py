"""What the overview summarizes, read so that it stays fast on a log of millions of records.

- **Verifications**: the newest ``audit.verify`` on ``audit:log`` and the newest ``artifact.verify`` on
  ``artifact:*`` (the whole store) in the audit log, passed or failed. Records are found by their
  canonical JSON (``"action":"audit.verify"``) newest first, and each replica remembers how far it has
  looked, so a view reads only the records appended since the last one. Events sent from elsewhere
  (``ingested_by``) are the sender's word and never count.
- **Activity**: events per hour over the last 24 hours. The log is in arrival order, which is time
  order near enough for an hourly chart, so the hour boundaries are found by binary search on the
  records' times (a few hundred single-record reads, whatever the log's size); when the day holds few
  enough records they are all read, and the refused ones (denied or error) are counted too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, LargeBinary, TextClause, bindparam, func, literal, select, text

from pipewarden.db import Database, audit_records
from pipewarden.errors import IntegrityError
from pipewarden.events import Event

if TYPE_CHECKING:
    from pipewarden.audit import AuditLog

__all__ = ["Activity", "Hour", "Verification", "Verifications", "activity", "chart"]

_PAGE = 200
#: A day with at most this many records is read whole (each record's outcome counted); a busier day
#: is counted by position only.
FULL_READ = 3000
#: "record 17: modified: ..." in a failed verification's detail: where the chain breaks.
_BROKEN_AT = re.compile(r"\brecord (\d+): ([a-z]+)\b")


@dataclass(frozen=True, slots=True)
class Verification:
    """One verification found in the log: of the audit log (``audit``) or of the whole store (``store``)."""

    kind: str
    seq: int
    time: datetime
    actor: str
    ok: bool
    #: Records (audit) or artifact versions (store) checked, when the event says.
    checked: int | None
    #: Versions that failed (store).
    failures: int | None
    #: The first bad record (audit), when the detail names one.
    broken_at: int | None
    detail: str

    @classmethod
    def of(cls, seq: int, event: Event) -> Verification | None:
        a = event.attributes
        if "ingested_by" in a or event.outcome not in ("allowed", "error"):
            return None
        if event.action == "audit.verify" and event.resource == "audit:log":
            kind, checked = "audit", a.get("records")
        elif event.action == "artifact.verify" and event.resource == "artifact:*":
            kind, checked = "store", a.get("checked")
        else:
            return None
        failures = a.get("failures")
        failures = failures if isinstance(failures, int) else None
        detail = str(a.get("detail") or a.get("reason") or "")
        broken = _BROKEN_AT.search(detail) if event.outcome == "error" else None
        return cls(
            kind=kind,
            seq=seq,
            time=event.time,
            actor=event.actor,
            ok=event.outcome == "allowed" and not failures,
            checked=checked if isinstance(checked, int) else None,
            failures=failures,
            broken_at=int(broken.group(1)) if broken else None,
            detail=detail,
        )


def _mentions(db: Database, needle: bytes) -> ColumnElement[bool] | TextClause:
    if db.dialect == "postgresql":
        return text("position(:needle in audit_records.body) > 0").bindparams(
            bindparam("needle", needle, type_=LargeBinary())
        )
    return func.instr(audit_records.c.body, literal(needle, LargeBinary())) > 0


def _newest(db: Database, action: str, after: int) -> Verification | None:
    """The newest verification by `action` in records after `after`, or None."""
    c = audit_records.c
    needle = f'"action":"{action}"'.encode()
    before: int | None = None
    with db.transaction(write=False) as conn:
        while True:
            query = select(c.seq, c.body).where(_mentions(db, needle), c.seq > after)
            if before is not None:
                query = query.where(c.seq < before)
            rows = conn.execute(query.order_by(c.seq.desc()).limit(_PAGE)).all()
            for seq, body in rows:
                found = Verification.of(int(seq), Event.from_json(bytes(body), source=f"audit record {seq}"))
                if found is not None:
                    return found
            if len(rows) < _PAGE:
                return None
            before = int(rows[-1][0])


@dataclass
class Verifications:
    """The newest verifications of the audit log and the store, as one replica has found them so far."""

    audit: Verification | None = None
    store: Verification | None = None
    #: The head of the log when it was last searched: the next search starts after it.
    searched_to: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self, db: Database, head: int) -> Verifications:
        """Search the records appended since the last search; returns self."""
        with self._lock:
            if head < self.searched_to:  # a different (recreated) log: start over
                self.audit = self.store = None
                self.searched_to = 0
            if head > self.searched_to:
                after = self.searched_to
                self.audit = _newest(db, "audit.verify", after) or self.audit
                self.store = _newest(db, "artifact.verify", after) or self.store
                self.searched_to = head
            return self

    def mark(self, seq: int) -> tuple[str, str]:
        """Whether record `seq` is covered by the newest audit verification: its state (``verified``,
        ``broken``, ``unchecked``) and a sentence saying why."""
        v = self.audit
        if v is None:
            return "unchecked", "the audit log has not been verified (none found in the log)"
        when = f"{v.time:%Y-%m-%d %H:%M} UTC"
        if v.ok:
            if v.checked is not None and seq > v.checked:
                return "unchecked", f"newer than the last verification ({when})"
            return "verified", f"the chain verified up to here on {when}"
        if v.broken_at is None:
            return "broken", f"the verification of {when} failed: {v.detail or 'no detail'}"
        if seq < v.broken_at:
            return "verified", f"the chain verified up to here on {when}"
        return "broken", f"the chain breaks at record {v.broken_at} (verification of {when})"


@dataclass(frozen=True, slots=True)
class Hour:
    start: datetime
    events: int
    #: Denied or error events, when the day was read whole (None when counted by position only).
    refused: int | None


@dataclass(frozen=True, slots=True)
class Activity:
    hours: tuple[Hour, ...]
    exact: bool

    @property
    def total(self) -> int:
        return sum(h.events for h in self.hours)

    @property
    def refused(self) -> int | None:
        return sum(h.refused or 0 for h in self.hours) if self.exact else None


def _first_at(time_of: Callable[[int], datetime], when: datetime, lo: int, hi: int) -> int:
    """The first position in `lo`..`hi` whose record is at or after `when` (`hi` + 1 if none)."""
    while lo <= hi:
        mid = (lo + hi) // 2
        if time_of(mid) >= when:
            hi = mid - 1
        else:
            lo = mid + 1
    return lo


def activity(log: AuditLog, *, now: datetime | None = None) -> Activity:
    """Events per hour in the 24 hours up to `now` (the current hour is the last, partial bar)."""
    now = now or datetime.now(UTC)
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    starts = [first_hour + timedelta(hours=i) for i in range(24)]
    tail = log.tail(1)
    head = tail[-1].seq if tail else 0
    seen: dict[int, datetime] = {}

    def time_of(seq: int) -> datetime:
        if seq not in seen:
            found = list(log.records(seq, seq))
            if not found:  # a hole in the chain: what `audit verify` reports as a deleted record
                raise IntegrityError(f"audit record {seq}: missing from the log")
            seen[seq] = found[0].event.time
        return seen[seq]

    begin = _first_at(time_of, starts[0], 1, head)
    if head - begin + 1 <= FULL_READ:
        events = [0] * 24
        refused = [0] * 24
        for entry in log.records(begin, head) if begin <= head else ():
            t = entry.event.time
            if starts[0] <= t:
                i = min(23, int((t - starts[0]).total_seconds() // 3600))
                events[i] += 1
                refused[i] += entry.event.outcome != "allowed"
        hours = tuple(Hour(s, n, r) for s, n, r in zip(starts, events, refused, strict=True))
        return Activity(hours, exact=True)
    bounds = [begin]
    for start in starts[1:]:
        bounds.append(_first_at(time_of, start, bounds[-1], head))
    bounds.append(head + 1)
    return Activity(
        tuple(Hour(s, bounds[i + 1] - bounds[i], None) for i, s in enumerate(starts)), exact=False
    )


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    height: float
    refused_y: float
    refused_height: float
    label: str
    tick: str


@dataclass(frozen=True, slots=True)
class Chart:
    """The activity chart's geometry, for the template's inline SVG (no script draws it)."""

    width: int
    height: int
    top: int
    base: float
    bars: tuple[Bar, ...]
    bar_width: float
    gridlines: tuple[tuple[float, str], ...]


def _nice_max(peak: int) -> int:
    """The chart's top: a round number (1, 2, 4, 6 or 8 x 10^k) at or above `peak` that quarters evenly."""
    k = 0
    while True:
        for m in (1, 2, 4, 6, 8):
            value: int = m * 10**k
            if value >= max(peak, 4) and value % 4 == 0:
                return value
        k += 1


def chart(act: Activity, *, width: int = 720, height: int = 200) -> Chart:
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    ceiling = _nice_max(max((h.events for h in act.hours), default=0))
    slot = plot_w / len(act.hours)
    bar_w = slot * 0.72
    base = top + plot_h
    bars = []
    for i, hour in enumerate(act.hours):
        h = plot_h * hour.events / ceiling
        r = plot_h * (hour.refused or 0) / ceiling
        end = hour.start + timedelta(hours=1)
        refused = f", {hour.refused} refused" if hour.refused is not None else ""
        bars.append(
            Bar(
                x=round(left + i * slot + (slot - bar_w) / 2, 1),
                y=round(base - h, 1),
                height=round(h, 1),
                refused_y=round(base - r, 1),
                refused_height=round(r, 1),
                label=f"{hour.start:%H:%M}-{end:%H:%M} UTC: {hour.events} events{refused}",
                tick=f"{hour.start:%H:%M}" if i % 4 == 0 else "",
            )
        )
    grid = tuple((round(base - plot_h * k / 4, 1), f"{ceiling * k // 4:,}") for k in range(5))
    return Chart(width, height, top, base, tuple(bars), round(bar_w, 1), grid)
