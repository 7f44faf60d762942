"""Continuous monitoring: rules and per-principal baselines over every event, alerts routed to people.

>>> from pipewarden.monitor import Engine, builtin_rules
>>> engine = Engine(builtin_rules())
>>> for event in events:                         # doctest: +SKIP
...     for detection in engine.observe(event):
...         print(detection.rule.id, detection.group)
"""

from __future__ import annotations

from pipewarden.monitor._alerts import Alert, AlertBook, Route, Silence, Timing, fingerprint
from pipewarden.monitor._engine import Detection, Engine
from pipewarden.monitor._metrics import Metrics
from pipewarden.monitor._monitor import Monitor
from pipewarden.monitor._rules import Rule, builtin_rules, load_rules, merge_rules
from pipewarden.monitor._sinks import (
    AlertSink,
    ConsoleSink,
    JsonlSink,
    SlackSink,
    SmtpSink,
    WebhookSink,
    sign_body,
    summary,
)

__all__ = [
    "Alert",
    "AlertBook",
    "AlertSink",
    "ConsoleSink",
    "Detection",
    "Engine",
    "JsonlSink",
    "Metrics",
    "Monitor",
    "Route",
    "Rule",
    "Silence",
    "SlackSink",
    "SmtpSink",
    "Timing",
    "WebhookSink",
    "builtin_rules",
    "fingerprint",
    "load_rules",
    "merge_rules",
    "sign_body",
    "summary",
]
