"""Alerts: detections deduplicated into alerts, grouped in time, silenced, acknowledged, routed to sinks.

In the manner of Prometheus Alertmanager:

- **Fingerprint.** A detection's rule id and group labels (``resource=user:ada``) hash to a fingerprint;
  detections with the same fingerprint while its alert is open add to that alert (a count, the latest
  evidence) instead of making a new one. An alert with no detection for `Timing.resolve_after` is
  resolved; a later detection opens a new one.
- **Timing.** A new alert is notified `group_wait` after it opened (detections arriving meanwhile go in
  the same notification); an alert with new detections since its last notification at most every
  `group_interval`; an alert still open with nothing new, again after `repeat_interval` (a reminder
  that nobody has acknowledged it). An acknowledged alert is not notified again unless it resolves and
  fires anew.
- **Silences** match alerts by labels (glob patterns, ``rule_id`` among them) until they end, with a
  reason; a silenced alert is kept and listed but not notified. Creating or ending a silence and
  acknowledging an alert are events through the one events path, so the audit log holds them.
- **Routes** send each notification to the sinks for its severity. A notification is written to the
  outbox first and delivered from there (`deliver`): a sink that fails is retried with exponential
  backoff, and nothing is lost while it is down.

Time is passed in (`now`), so replays of recorded events and tests run on the events' own clock.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from pipewarden.db import Database, monitor_alerts, monitor_outbox, monitor_silences
from pipewarden.errors import ConfigError
from pipewarden.events import Acting
from pipewarden.findings import Severity
from pipewarden.monitor._engine import EVIDENCE, Detection
from pipewarden.monitor._sinks import AlertSink, SinkError

__all__ = ["STATUSES", "Alert", "AlertBook", "Route", "Silence", "Timing", "fingerprint"]

logger = logging.getLogger(__name__)

STATUSES = ("firing", "acknowledged", "resolved")
_MAX_BACKOFF = timedelta(hours=1)
_FIRST_BACKOFF = timedelta(seconds=10)


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """The stable identity of an alert: its rule and group labels."""
    body = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":")).encode()
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Timing:
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    resolve_after: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Route:
    """Notifications of at least `min_severity` go to the sinks named."""

    min_severity: Severity
    sinks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    fingerprint: str
    rule_id: str
    severity: Severity
    title: str
    labels: dict[str, str]
    status: str
    first_seen: datetime
    last_seen: datetime
    detections: int
    evidence: tuple[dict[str, Any], ...]
    facts: dict[str, Any]
    notified_at: datetime | None = None
    acknowledged_by: str | None = None
    silenced_by: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "title": self.title,
            "labels": self.labels,
            "status": self.status,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "detections": self.detections,
            "facts": self.facts,
            "evidence": list(self.evidence),
            "notified_at": _iso(self.notified_at) if self.notified_at else None,
            "acknowledged_by": self.acknowledged_by,
            "silenced_by": self.silenced_by,
        }


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: dict[str, str]
    reason: str
    created_by: str
    created_at: datetime
    ends_at: datetime
    expired_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expired_at is None and self.created_at <= now < self.ends_at

    def matches(self, rule_id: str, labels: Mapping[str, str]) -> bool:
        values = {"rule_id": rule_id, **labels}
        return all(
            name in values and fnmatch.fnmatchcase(values[name], pattern)
            for name, pattern in self.matchers.items()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": self.matchers,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "ends_at": _iso(self.ends_at),
            "expired_at": _iso(self.expired_at) if self.expired_at else None,
        }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _alert(row: Any, silenced_by: int | None = None) -> Alert:
    return Alert(
        id=int(row.id),
        fingerprint=row.fingerprint,
        rule_id=row.rule_id,
        severity=Severity(int(row.severity)),
        title=row.title,
        labels=json.loads(row.labels),
        status=row.status,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        detections=int(row.detections),
        evidence=tuple(json.loads(row.evidence)),
        facts=json.loads(row.facts),
        notified_at=row.notified_at,
        acknowledged_by=row.acknowledged_by,
        silenced_by=silenced_by,
    )


def _silence(row: Any) -> Silence:
    return Silence(
        id=int(row.id),
        matchers=json.loads(row.matchers),
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        ends_at=row.ends_at,
        expired_at=row.expired_at,
    )


@dataclass
class AlertBook:
    """The alerts, silences and outbox of one database."""

    db: Database
    sinks: Mapping[str, AlertSink] = field(default_factory=dict)
    routes: Sequence[Route] = ()
    timing: Timing = field(default_factory=Timing)
    #: Where acknowledgements and silences are recorded (the audit log, through the events path).
    acting: Acting | None = None
    #: Counters the metrics expose: notifications queued and delivered, sink failures, per sink.
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for route in self.routes:
            for name in route.sinks:
                if name not in self.sinks:
                    raise ConfigError(f"route for {route.min_severity.label}: no sink named {name!r}")

    # --- detections into alerts ----------------------------------------------------------------------

    def record(self, detection: Detection) -> Alert:
        """Add `detection` to its open alert, or open one."""
        labels = dict(detection.group)
        mark = fingerprint(detection.rule.id, labels)
        now = datetime.fromtimestamp(detection.time, UTC)
        evidence = [event.to_dict() for event in detection.events][-EVIDENCE:]
        with self.db.transaction() as conn:
            row = conn.execute(
                select(monitor_alerts)
                .where(monitor_alerts.c.fingerprint == mark, monitor_alerts.c.status != "resolved")
                .order_by(monitor_alerts.c.id.desc())
                .limit(1)
            ).first()
            if (
                row is not None
                and now - row.last_seen > self.timing.resolve_after
                and (row.notified_at is not None or row.status == "acknowledged")
            ):
                conn.execute(
                    monitor_alerts.update()
                    .where(monitor_alerts.c.id == row.id)
                    .values(status="resolved", resolved_at=row.last_seen + self.timing.resolve_after)
                )
                row = None
            if row is None:
                alert_id = conn.execute(
                    monitor_alerts.insert().values(
                        fingerprint=mark,
                        rule_id=detection.rule.id,
                        severity=int(detection.rule.severity),
                        title=detection.rule.title[:256],
                        labels=json.dumps(labels, sort_keys=True),
                        status="firing",
                        first_seen=now,
                        last_seen=now,
                        detections=1,
                        evidence=json.dumps(evidence),
                        facts=json.dumps(detection.facts, default=str),
                        notified_detections=0,
                    )
                ).inserted_primary_key
                alert_id = int(alert_id[0]) if alert_id else 0
            else:
                alert_id = row.id
                merged = (json.loads(row.evidence) + evidence)[-EVIDENCE:]
                conn.execute(
                    monitor_alerts.update()
                    .where(monitor_alerts.c.id == row.id)
                    .values(
                        last_seen=max(now, row.last_seen),
                        detections=row.detections + 1,
                        evidence=json.dumps(merged),
                        facts=json.dumps(detection.facts, default=str),
                    )
                )
            stored = conn.execute(select(monitor_alerts).where(monitor_alerts.c.id == alert_id)).one()
        return _alert(stored)

    # --- timing, silences and the outbox -------------------------------------------------------------

    def tick(self, now: datetime) -> list[Alert]:
        """Resolve quiet alerts and queue the notifications due at `now`; returns the alerts notified."""
        notified: list[Alert] = []
        silences = [s for s in self.silences() if s.active(now)]
        with self.db.transaction() as conn:
            # A quiet alert resolves, but only once somebody was told of it (or acknowledged it): alerts
            # on old events (a monitor catching up, a late batch ingested) are sent, not resolved unseen.
            conn.execute(
                monitor_alerts.update()
                .where(
                    monitor_alerts.c.status != "resolved",
                    monitor_alerts.c.last_seen < now - self.timing.resolve_after,
                    or_(monitor_alerts.c.notified_at.is_not(None), monitor_alerts.c.status == "acknowledged"),
                )
                .values(status="resolved", resolved_at=now)
            )
            rows = conn.execute(
                select(monitor_alerts)
                .where(monitor_alerts.c.status == "firing")
                .order_by(monitor_alerts.c.id)
            ).all()
            for row in rows:
                silence = next((s for s in silences if s.matches(row.rule_id, json.loads(row.labels))), None)
                if silence is not None or not self._due(row, now):
                    continue
                alert = _alert(row)
                payload = json.dumps({"v": "pipewarden.alert/1", **alert.to_dict()}, default=str)
                for name in self._sinks_for(alert.severity):
                    conn.execute(
                        monitor_outbox.insert().values(
                            alert_id=row.id,
                            sink=name,
                            payload=payload,
                            created_at=now,
                            attempts=0,
                            next_attempt_at=now,
                        )
                    )
                    self._count(f"queued:{name}")
                conn.execute(
                    monitor_alerts.update()
                    .where(monitor_alerts.c.id == row.id)
                    .values(notified_at=now, notified_detections=row.detections)
                )
                notified.append(alert)
        return notified

    def _due(self, row: Any, now: datetime) -> bool:
        if row.notified_at is None:
            return bool(now >= row.first_seen + self.timing.group_wait)
        if row.detections > row.notified_detections:
            return bool(now >= row.notified_at + self.timing.group_interval)
        return bool(now >= row.notified_at + self.timing.repeat_interval)

    def _sinks_for(self, severity: Severity) -> list[str]:
        names: list[str] = []
        for route in self.routes:
            if severity >= route.min_severity:
                names.extend(n for n in route.sinks if n not in names)
        return names

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def deliver(self, now: datetime) -> tuple[int, int]:
        """Send every outbox entry that is due; returns (delivered, failed). A failure stays queued and is
        retried after 10 s, 20 s, 40 s ... up to an hour between attempts."""
        delivered = failed = 0
        with self.db.transaction(write=False) as conn:
            due = conn.execute(
                select(monitor_outbox)
                .where(monitor_outbox.c.delivered_at.is_(None), monitor_outbox.c.next_attempt_at <= now)
                .order_by(monitor_outbox.c.id)
            ).all()
        for row in due:
            sink = self.sinks.get(row.sink)
            error: str | None = None
            if sink is None:
                error = f"no sink named {row.sink!r} is configured now"
            else:
                try:
                    sink.send(json.loads(row.payload))
                except SinkError as exc:
                    error = str(exc)
                except Exception as exc:  # a sink's own bug must not stop the rows after this one
                    error = f"{row.sink}: {type(exc).__name__}: {exc}"
            with self.db.transaction() as conn:
                if error is None:
                    conn.execute(
                        monitor_outbox.update()
                        .where(monitor_outbox.c.id == row.id)
                        .values(delivered_at=now, attempts=row.attempts + 1, last_error=None)
                    )
                    delivered += 1
                    self._count(f"delivered:{row.sink}")
                else:
                    wait = min(_FIRST_BACKOFF * (2 ** min(row.attempts, 20)), _MAX_BACKOFF)
                    conn.execute(
                        monitor_outbox.update()
                        .where(monitor_outbox.c.id == row.id)
                        .values(
                            attempts=row.attempts + 1, next_attempt_at=now + wait, last_error=error[:1024]
                        )
                    )
                    failed += 1
                    self._count(f"failed:{row.sink}")
                    logger.warning("alert sink %s failed (attempt %d): %s", row.sink, row.attempts + 1, error)
        return delivered, failed

    def pending(self) -> int:
        """Notifications written to the outbox and not yet delivered."""
        with self.db.transaction(write=False) as conn:
            return len(
                conn.execute(select(monitor_outbox.c.id).where(monitor_outbox.c.delivered_at.is_(None))).all()
            )

    # --- people: list, acknowledge, silence ----------------------------------------------------------

    def alerts(self, *, status: Iterable[str] | None = None, now: datetime | None = None) -> list[Alert]:
        wanted = tuple(status) if status is not None else STATUSES
        unknown = sorted(set(wanted) - set(STATUSES))
        if unknown:
            raise ConfigError(f"alert status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
        when = now or datetime.now(UTC)
        silences = [s for s in self.silences() if s.active(when)]
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                select(monitor_alerts)
                .where(monitor_alerts.c.status.in_(wanted))
                .order_by(monitor_alerts.c.severity.desc(), monitor_alerts.c.last_seen.desc())
            ).all()
        result = []
        for row in rows:
            silence = next((s for s in silences if s.matches(row.rule_id, json.loads(row.labels))), None)
            result.append(_alert(row, silence.id if silence else None))
        return result

    def acknowledge(self, alert_id: int, *, by: str, now: datetime | None = None) -> Alert:
        when = now or datetime.now(UTC)
        with self.db.transaction() as conn:
            row = conn.execute(select(monitor_alerts).where(monitor_alerts.c.id == alert_id)).first()
            if row is None:
                raise ConfigError(f"alert {alert_id}: no such alert")
            if row.status == "resolved":
                raise ConfigError(f"alert {alert_id}: resolved already; nothing to acknowledge")
            conn.execute(
                monitor_alerts.update()
                .where(monitor_alerts.c.id == alert_id)
                .values(status="acknowledged", acknowledged_by=by[:64], acknowledged_at=when)
            )
            stored = conn.execute(select(monitor_alerts).where(monitor_alerts.c.id == alert_id)).one()
        self._audit(
            "alert.ack", f"alert:{alert_id}", {"rule_id": row.rule_id, "fingerprint": row.fingerprint}
        )
        return _alert(stored)

    def silence(
        self,
        matchers: Mapping[str, str],
        *,
        reason: str,
        duration: timedelta,
        by: str,
        now: datetime | None = None,
    ) -> Silence:
        """Silence alerts whose labels match every pattern in `matchers` for `duration`, with a reason."""
        if not matchers:
            raise ConfigError("a silence needs at least one matcher (rule_id=PATTERN, or a label)")
        if not reason.strip():
            raise ConfigError("a silence needs a reason: the audit log keeps why alerts went unheard")
        if duration <= timedelta(0) or duration > timedelta(days=30):
            raise ConfigError(f"a silence lasts more than nothing and at most 30 days, not {duration}")
        when = now or datetime.now(UTC)
        with self.db.transaction() as conn:
            silence_id = conn.execute(
                monitor_silences.insert().values(
                    matchers=json.dumps(dict(matchers), sort_keys=True),
                    reason=reason.strip()[:1024],
                    created_by=by[:64],
                    created_at=when,
                    ends_at=when + duration,
                )
            ).inserted_primary_key
            silence_id = int(silence_id[0]) if silence_id else 0
            row = conn.execute(select(monitor_silences).where(monitor_silences.c.id == silence_id)).one()
        silence = _silence(row)
        self._audit(
            "alert.silence",
            f"silence:{silence.id}",
            {
                "change": "create",
                "matchers": json.dumps(silence.matchers, sort_keys=True)[:1024],
                "reason": silence.reason,
                "ends_at": _iso(silence.ends_at),
            },
        )
        return silence

    def expire(self, silence_id: int, *, now: datetime | None = None) -> Silence:
        """End a silence before its time."""
        when = now or datetime.now(UTC)
        with self.db.transaction() as conn:
            row = conn.execute(select(monitor_silences).where(monitor_silences.c.id == silence_id)).first()
            if row is None:
                raise ConfigError(f"silence {silence_id}: no such silence")
            conn.execute(
                monitor_silences.update()
                .where(and_(monitor_silences.c.id == silence_id, monitor_silences.c.expired_at.is_(None)))
                .values(expired_at=when)
            )
            row = conn.execute(select(monitor_silences).where(monitor_silences.c.id == silence_id)).one()
        self._audit("alert.silence", f"silence:{silence_id}", {"change": "expire"})
        return _silence(row)

    def silences(self) -> list[Silence]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(select(monitor_silences).order_by(monitor_silences.c.id)).all()
        return [_silence(row) for row in rows]

    def _audit(self, action: str, resource: str, attributes: dict[str, Any]) -> None:
        if self.acting is not None:
            self.acting.emit(action, resource, "allowed", attributes)
