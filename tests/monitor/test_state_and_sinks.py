"""Baselines kept in the database and warmed from history; the settings file; the Slack and SMTP sinks
against real servers on loopback; the metrics text."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipewarden.db import Database
from pipewarden.errors import ConfigError, SinkError
from pipewarden.monitor import Metrics, Monitor, SlackSink, SmtpSink, builtin_rules
from pipewarden.monitor._config import MonitorConfig
from tests.monitor.helpers import ev, login

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PAYLOAD = {
    "v": "pipewarden.alert/1",
    "rule_id": "PW-MON-101",
    "severity": "high",
    "title": "brute force on one account",
    "labels": {"resource": "user:ada"},
    "detections": 3,
    "first_seen": "2026-03-02T09:00:00Z",
}


def _history() -> Iterator[Any]:
    for day in range(10):
        for hour in range(2):
            yield login("ada", at=day * DAY + hour * HOUR)


def test_baselines_survive_a_restart_through_the_database(database: Database) -> None:
    first = Monitor(builtin_rules())
    assert first.warm(_history()) == 20
    first.save_state(database)
    again = Monitor(builtin_rules())
    assert again.load_state(database)
    stranger = login("ada", origin="203.0.113.5", at=11 * DAY)
    assert [d.rule.id for d in again.observe(stranger)] == ["PW-MON-104"]
    cold = Monitor(builtin_rules())  # no history: nothing to compare with, so nothing is new
    assert [d.rule.id for d in cold.observe(stranger)] == []
    first.save_state(database)  # saving twice updates the one row
    assert Monitor(builtin_rules()).load_state(database)


def test_settings_file_sinks_routes_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "ours.yaml").write_text(
        "rules:\n  - id: OURS-1\n    title: t\n    severity: low\n    selection: {action: a.b}\n"
    )
    monkeypatch.setenv("HOOK_SECRET", "x" * 32)
    (tmp_path / "monitor.yaml").write_text(
        "rules: [rules/ours.yaml]\n"
        "timing: {group_wait: 1m, resolve_after: 2h}\n"
        "sinks:\n"
        "  - {name: file, type: jsonl, path: out/alerts.jsonl}\n"
        "  - {name: hook, type: webhook, url: 'http://127.0.0.1:9/in', secret_env: HOOK_SECRET}\n"
        "routes:\n  - {min_severity: high, sinks: [hook]}\n  - {min_severity: info, sinks: [file]}\n"
    )
    config = MonitorConfig.for_workspace(tmp_path)
    assert "OURS-1" in {r.id for r in config.rules} and len(config.rules) == len(builtin_rules()) + 1
    assert set(config.sinks) == {"file", "hook"} and config.timing.group_wait == timedelta(minutes=1)
    for text, problem in [
        ("colour: red\n", "unknown setting 'colour'"),
        (
            "sinks:\n  - {name: hook, type: webhook, url: 'http://x', secret_env: NOT_SET_ANYWHERE}\n",
            "NOT_SET_ANYWHERE is not set",
        ),
        ("sinks:\n  - {name: f, type: fax}\n", "type 'fax'"),
        ("routes:\n  - {min_severity: high, sinks: [pager]}\n", "no sink 'pager'"),
        ("timing: {group_wait: soon}\n", "timing.group_wait"),
        ("builtin: false\n", "no rules"),
        ("rules: rules/ours.yaml\n", "rules is a list"),
        (
            "sinks:\n  - {name: m, type: smtp, host: h, sender: s, recipients: [r], port: abc}\n"
            "routes:\n  - {min_severity: high, sinks: [m]}\n",
            "port must be a number",
        ),
        (
            "sinks:\n  - {name: f, type: jsonl}\nroutes:\n  - {min_severity: high, sinks: 5}\n",
            "sinks is a list",
        ),
        (
            "sinks:\n  - {name: f, type: jsonl}\nroutes:\n  - {min_severity: urgent, sinks: [f]}\n",
            "route: 'urgent'",
        ),
        ("sinks:\n  - {name: f, type: jsonl}\n", "no alert would reach anyone"),
        ("sinks:\n  - {name: h, type: webhook, url: 'ftp://x/y', secret_env: HOOK_SECRET}\n", "must be http"),
    ]:
        (tmp_path / "monitor.yaml").write_text(text)
        with pytest.raises(ConfigError, match=problem):
            MonitorConfig.for_workspace(tmp_path)


class Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_the_slack_sink_posts_one_line(tmp_path: Path) -> None:
    Hook.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        SlackSink(f"http://127.0.0.1:{server.server_address[1]}/hook").send(PAYLOAD)
    finally:
        server.shutdown()
    assert Hook.bodies == [
        {
            "text": "[HIGH] PW-MON-101 brute force on one account (resource=user:ada): "
            "3 detection(s) since 2026-03-02T09:00:00Z"
        }
    ]


class Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message (no TLS: the sink runs with starttls off on loopback)."""

    messages: ClassVar[list[str]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 loopback ESMTP\r\n")
        data: list[bytes] | None = None
        while line := self.rfile.readline():
            if data is not None:
                if line in (b".\r\n", b".\n"):
                    type(self).messages.append(b"".join(data).decode())
                    data = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line)
                continue
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"DATA":
                data = []
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == b"EHLO":
                self.wfile.write(b"250 loopback\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


def test_the_smtp_sink_sends_an_email_and_a_dead_server_is_a_sink_error() -> None:
    Smtp.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Smtp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    sink = SmtpSink(
        "127.0.0.1", port, sender="pw@example.test", recipients=("sec@example.test",), starttls=False
    )
    try:
        sink.send(PAYLOAD)
    finally:
        server.shutdown()
        server.server_close()
    (message,) = Smtp.messages
    assert "Subject: [HIGH] PW-MON-101 brute force on one account" in message
    assert '"rule_id": "PW-MON-101"' in message
    with pytest.raises(SinkError, match="cannot send"):
        SmtpSink(
            "127.0.0.1", port, sender="a@b.test", recipients=("c@d.test",), starttls=False, timeout=2
        ).send(PAYLOAD)


def test_metrics_text_is_prometheus_exposition() -> None:
    metrics = Metrics()
    metrics.add("pipewarden_events_total", {"action": "auth.login", "outcome": "denied"}, 3)
    metrics.set("pipewarden_outbox_pending", None, 2)
    metrics.add("pipewarden_detections_total", {"rule": 'we"ird\\rule', "severity": "high"})
    text = metrics.render()
    assert "# TYPE pipewarden_events_total counter" in text
    assert 'pipewarden_events_total{action="auth.login",outcome="denied"} 3' in text
    assert "pipewarden_outbox_pending 2" in text
    assert 'rule="we\\"ird\\\\rule"' in text
    assert text.endswith("\n")


def test_monitor_observe_counts_events_and_detections() -> None:
    monitor = Monitor(builtin_rules())
    monitor.observe(ev("audit.verify", resource="audit:log", outcome="error", reason="integrity"))
    assert (
        monitor.metrics.get("pipewarden_detections_total", {"rule": "PW-MON-116", "severity": "critical"})
        == 1
    )
    assert monitor.metrics.get("pipewarden_events_total", {"action": "audit.verify", "outcome": "error"}) == 1


def test_a_settings_file_that_only_adds_rules_keeps_the_default_sinks(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text(
        "rules:\n  - id: OURS-1\n    title: t\n    severity: low\n    selection: {action: a.b}\n"
    )
    (tmp_path / "monitor.yaml").write_text("rules: [ours.yaml]\n")
    config = MonitorConfig.for_workspace(tmp_path)
    assert set(config.sinks) == {"console", "file"} and config.routes
