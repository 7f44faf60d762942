"""The monitor: events in, rules and baselines over them, alerts out through the book and its sinks.

`Monitor.observe(event)` is an `Events` subscriber: every event any part emits reaches it after the
audit log has it. Detections become alerts in the `AlertBook` (when there is one); `tick(now)` queues the
notifications due and delivers the outbox. Baselines are kept in the database (`save_state`,
`load_state`) and can be warmed from recorded events (`warm`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from pipewarden.db import Database, monitor_state
from pipewarden.events import Event
from pipewarden.monitor._alerts import AlertBook
from pipewarden.monitor._engine import Detection, Engine
from pipewarden.monitor._metrics import Metrics
from pipewarden.monitor._rules import Rule

__all__ = ["Monitor"]

_BASELINES = "baselines"


class Monitor:
    def __init__(
        self, rules: Iterable[Rule], *, book: AlertBook | None = None, metrics: Metrics | None = None
    ) -> None:
        self.engine = Engine(rules)
        self.book = book
        self.metrics = metrics or Metrics()
        self.detections = 0

    def observe(self, event: Event) -> list[Detection]:
        """Evaluate `event`; record what it completes as alerts. Returns the detections."""
        self.metrics.add("pipewarden_events_total", {"action": event.action, "outcome": event.outcome})
        found = self.engine.observe(event)
        for detection in found:
            self.detections += 1
            labels = {"rule": detection.rule.id, "severity": detection.rule.severity.label}
            self.metrics.add("pipewarden_detections_total", labels)
            if self.book is not None:
                alert = self.book.record(detection)
                if alert.detections == 1:
                    self.metrics.add("pipewarden_alerts_total", labels)
        return found

    __call__ = observe  # an Events subscriber

    def tick(self, now: datetime | None = None) -> tuple[int, int]:
        """Queue due notifications and deliver the outbox; returns (delivered, failed)."""
        if self.book is None:
            return 0, 0
        when = now or datetime.now(UTC)
        self.book.tick(when)
        delivered, failed = self.book.deliver(when)
        self._gauges()
        return delivered, failed

    def _gauges(self) -> None:
        if self.book is None:
            return
        for key, value in self.book.counts.items():
            result, _, sink = key.partition(":")
            self.metrics.set("pipewarden_notifications_total", {"sink": sink, "result": result}, value)
            if result == "failed":
                self.metrics.set("pipewarden_sink_failures_total", {"sink": sink}, value)
        open_alerts: dict[str, int] = {}
        for alert in self.book.alerts(status=("firing", "acknowledged")):
            open_alerts[alert.severity.label] = open_alerts.get(alert.severity.label, 0) + 1
        for severity in ("info", "low", "medium", "high", "critical"):
            self.metrics.set("pipewarden_alerts_open", {"severity": severity}, open_alerts.get(severity, 0))
        self.metrics.set("pipewarden_outbox_pending", None, self.book.pending())
        self.metrics.set("pipewarden_rule_groups", None, self.engine.groups())

    def warm(self, events: Iterable[Event]) -> int:
        """Learn baselines from recorded events without raising alerts; returns how many were read."""
        count = 0
        for event in events:
            self.engine.learn(event)
            count += 1
        return count

    def save_state(self, db: Database, *, conn: Connection | None = None) -> None:
        """Keep the baselines in the database (in `conn`'s transaction when given)."""
        if conn is None:
            with db.transaction() as own:
                self.save_state(db, conn=own)
            return
        body = json.dumps({rule_id: state.state() for rule_id, state in self.engine.baselines.items()})
        now = datetime.now(UTC)
        updated = conn.execute(
            monitor_state.update().where(monitor_state.c.name == _BASELINES).values(body=body, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(monitor_state.insert().values(name=_BASELINES, body=body, updated_at=now))

    def load_state(self, db: Database) -> bool:
        with db.transaction(write=False) as conn:
            row = conn.execute(select(monitor_state.c.body).where(monitor_state.c.name == _BASELINES)).first()
        if row is None:
            return False
        saved = json.loads(row.body)
        for rule_id, state in self.engine.baselines.items():
            if rule_id in saved:
                state.restore(saved[rule_id])
        return True
