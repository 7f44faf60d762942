"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

Counters: events observed by action and outcome, detections and alerts by rule and severity,
notifications queued, delivered and failed by sink. Gauges: open alerts by severity, notifications
waiting in the outbox, groups held in rule windows. `render()` writes the text a ``/metrics`` endpoint
serves.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

__all__ = ["Metrics"]

_HELP = {
    "pipewarden_events_total": ("counter", "Events the monitor observed, by action and outcome."),
    "pipewarden_detections_total": ("counter", "Rule detections, by rule and severity."),
    "pipewarden_alerts_total": ("counter", "Alerts opened, by rule and severity."),
    "pipewarden_notifications_total": (
        "counter",
        "Alert notifications by sink and result (queued, delivered, failed).",
    ),
    "pipewarden_sink_failures_total": (
        "counter",
        "Failed deliveries to a sink (each retried from the outbox).",
    ),
    "pipewarden_alerts_open": ("gauge", "Alerts firing or acknowledged, by severity."),
    "pipewarden_outbox_pending": ("gauge", "Notifications written to the outbox and not yet delivered."),
    "pipewarden_rule_groups": ("gauge", "Groups held in rule windows now."),
    "pipewarden_ingest_rejected_total": (
        "counter",
        "Ingested lines that were not valid events (kept aside).",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Thread-safe counters and gauges keyed by name and labels."""

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {name: {} for name in _HELP}
        self._lock = threading.Lock()

    def add(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0) -> None:
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, labels: Mapping[str, str] | None = None, value: float = 0.0) -> None:
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            self._values[name][key] = value

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            return self._values[name].get(key, 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in _HELP.items():
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                for key, value in sorted(self._values[name].items()):
                    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                    shown = int(value) if float(value).is_integer() else value
                    lines.append(f"{name}{{{labels}}} {shown}" if labels else f"{name} {shown}")
        return "\n".join(lines) + "\n"
