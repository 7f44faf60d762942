"""Alerts: deduplication, timing, silences and acknowledgement (audited), routing, and the outbox
delivering through a real webhook on loopback that is down, then up, and checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from pipewarden.db import Database
from pipewarden.errors import ConfigError
from pipewarden.events import Acting, Actor, Events, LocalOperator
from pipewarden.findings import Severity
from pipewarden.monitor import AlertBook, JsonlSink, Monitor, Route, Timing, WebhookSink, builtin_rules
from tests.eventlog import MemoryLog
from tests.monitor.helpers import T0, ev, failed_login

SECRET = b"s" * 32
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)


class Collect:
    name = "collect"

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def send(self, payload: Any) -> None:
        self.payloads.append(dict(payload))


def _book(
    database: Database, *sinks: Any, routes: tuple[Route, ...] | None = None, log: MemoryLog | None = None
) -> AlertBook:
    named = {s.name: s for s in sinks}
    acting = Acting(
        actor=Actor("ops", "user", "cli:ops@host"),
        events=Events(log or MemoryLog()),
        authorizer=LocalOperator(),
    )
    return AlertBook(
        database,
        sinks=named,
        routes=routes if routes is not None else (Route(Severity.INFO, tuple(named)),),
        timing=Timing(
            group_wait=30 * SEC,
            group_interval=5 * MIN,
            repeat_interval=timedelta(hours=4),
            resolve_after=timedelta(hours=24),
        ),
        acting=acting,
    )


def _brute(monitor: Monitor, user: str = "ada", *, start: timedelta = timedelta(0), n: int = 10) -> None:
    for i in range(n):
        monitor.observe(failed_login(user, at=start + i * SEC))


def test_detections_with_one_fingerprint_are_one_alert(database: Database) -> None:
    book = _book(database, Collect())
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor, "ada")
    _brute(monitor, "ada", start=MIN)
    _brute(monitor, "bob", start=2 * MIN)
    alerts = sorted(book.alerts(now=T0), key=lambda a: a.labels["resource"])
    assert [(a.labels["resource"], a.detections) for a in alerts] == [("user:ada", 2), ("user:bob", 1)]
    assert len(alerts[0].evidence) == 20 and alerts[0].status == "firing"


def test_notifications_wait_group_and_repeat(database: Database) -> None:
    sink = Collect()
    book = _book(database, sink)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)  # opened at T0 + 9 s
    monitor.tick(T0 + 20 * SEC)
    assert sink.payloads == []  # still inside group_wait
    monitor.tick(T0 + 40 * SEC)
    assert len(sink.payloads) == 1 and sink.payloads[0]["detections"] == 1
    _brute(monitor, start=MIN)  # a second detection
    monitor.tick(T0 + 2 * MIN)
    assert len(sink.payloads) == 1  # inside group_interval
    monitor.tick(T0 + 6 * MIN)
    assert len(sink.payloads) == 2 and sink.payloads[1]["detections"] == 2
    monitor.tick(T0 + 7 * MIN)
    assert len(sink.payloads) == 2  # nothing new: waits for repeat_interval
    monitor.tick(T0 + 4 * timedelta(hours=1) + 10 * MIN)  # still open, unacknowledged: a reminder
    assert len(sink.payloads) == 3 and sink.payloads[2]["detections"] == 2


def test_an_acknowledged_alert_is_not_notified_again_and_the_ack_is_an_event(database: Database) -> None:
    sink, log = Collect(), MemoryLog()
    book = _book(database, sink, log=log)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    monitor.tick(T0 + MIN)
    (alert,) = book.alerts(now=T0)
    book.acknowledge(alert.id, by="ops", now=T0 + 2 * MIN)
    _brute(monitor, start=3 * MIN)
    monitor.tick(T0 + 10 * MIN)
    assert len(sink.payloads) == 1
    assert [(e.action, e.resource) for e in log.events] == [("alert.ack", f"alert:{alert.id}")]
    with pytest.raises(ConfigError, match="no such alert"):
        book.acknowledge(999, by="ops")


def test_a_quiet_alert_resolves_and_a_new_detection_opens_another(database: Database) -> None:
    book = _book(database, Collect())
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    monitor.tick(T0 + MIN)  # notified
    monitor.tick(T0 + 25 * timedelta(hours=1))
    assert [a.status for a in book.alerts(now=T0)] == ["resolved"]
    _brute(monitor, start=26 * timedelta(hours=1))
    assert sorted(a.status for a in book.alerts(now=T0)) == ["firing", "resolved"]


def test_a_silence_holds_notifications_until_it_ends_and_is_audited(database: Database) -> None:
    sink, log = Collect(), MemoryLog()
    book = _book(database, sink, log=log)
    monitor = Monitor(builtin_rules(), book=book)
    silence = book.silence(
        {"rule_id": "PW-MON-1*", "resource": "user:ada"},
        reason="pen test until noon",
        duration=timedelta(hours=1),
        by="ops",
        now=T0,
    )
    _brute(monitor, "ada")
    _brute(monitor, "bob")
    monitor.tick(T0 + MIN)
    assert [p["labels"]["resource"] for p in sink.payloads] == ["user:bob"]
    listed = {a.labels["resource"]: a.silenced_by for a in book.alerts(now=T0 + MIN)}
    assert listed == {"user:ada": silence.id, "user:bob": None}
    book.expire(silence.id, now=T0 + 2 * MIN)
    monitor.tick(T0 + 3 * MIN)
    assert [p["labels"]["resource"] for p in sink.payloads] == ["user:bob", "user:ada"]
    assert [(e.action, e.attributes["change"]) for e in log.events] == [
        ("alert.silence", "create"),
        ("alert.silence", "expire"),
    ]
    assert log.events[0].attributes["reason"] == "pen test until noon"


@pytest.mark.parametrize(
    ("matchers", "reason", "duration", "problem"),
    [
        ({}, "why", timedelta(hours=1), "at least one matcher"),
        ({"rule_id": "*"}, "  ", timedelta(hours=1), "needs a reason"),
        ({"rule_id": "*"}, "why", timedelta(days=31), "at most 30 days"),
    ],
)
def test_a_silence_needs_matchers_a_reason_and_an_end(
    database: Database, matchers: dict[str, str], reason: str, duration: timedelta, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        _book(database, Collect()).silence(matchers, reason=reason, duration=duration, by="ops")


def test_routes_send_each_severity_to_its_sinks(database: Database, tmp_path: Any) -> None:
    pager, everything = Collect(), JsonlSink(tmp_path / "alerts.jsonl", name="file")
    pager.name = "pager"
    book = _book(
        database,
        pager,
        everything,
        routes=(Route(Severity.CRITICAL, ("pager",)), Route(Severity.MEDIUM, ("file",))),
    )
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)  # high
    monitor.observe(ev("audit.verify", resource="audit:log", outcome="error", reason="integrity"))  # critical
    monitor.tick(T0 + MIN)
    assert [p["rule_id"] for p in pager.payloads] == ["PW-MON-116"]
    written = [json.loads(line)["rule_id"] for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert sorted(written) == ["PW-MON-101", "PW-MON-116"]


def test_a_route_to_an_unknown_sink_is_refused(database: Database) -> None:
    with pytest.raises(ConfigError, match="no sink named 'pager'"):
        AlertBook(database, sinks={}, routes=(Route(Severity.HIGH, ("pager",)),))


# --- the outbox and a real webhook --------------------------------------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    rejected = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers.get("X-Pipewarden-Timestamp", "")
        expected = "sha256=" + hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Pipewarden-Signature", "")):
            type(self).rejected += 1
            self.send_response(401)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver_port() -> Iterator[int]:
    Receiver.received, Receiver.rejected = [], 0
    yield _free_port()


def _serve(port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_webhook_that_is_down_delays_the_alert_and_never_loses_it(
    database: Database, receiver_port: int
) -> None:
    hook = WebhookSink(f"http://127.0.0.1:{receiver_port}/in", secret=SECRET, name="hook", timeout=2.0)
    book = _book(database, hook)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    assert monitor.tick(T0 + MIN) == (0, 1)  # nobody listening: kept in the outbox
    assert book.pending() == 1
    assert monitor.metrics.get("pipewarden_sink_failures_total", {"sink": "hook"}) == 1
    assert monitor.tick(T0 + MIN + 5 * SEC) == (0, 0)  # backing off: not due again yet
    server = _serve(receiver_port)
    try:
        assert monitor.tick(T0 + MIN + 11 * SEC) == (1, 0)
    finally:
        server.shutdown()
    assert book.pending() == 0
    (payload,) = Receiver.received
    assert payload["rule_id"] == "PW-MON-101" and payload["v"] == "pipewarden.alert/1"
    assert payload["evidence"][0]["action"] == "auth.login"
    assert "pipewarden_outbox_pending 0" in monitor.metrics.render()


def test_the_receiver_refuses_a_wrong_signature_and_the_alert_stays_queued(
    database: Database, receiver_port: int
) -> None:
    hook = WebhookSink(f"http://127.0.0.1:{receiver_port}/in", secret=b"w" * 32, name="hook", timeout=2.0)
    book = _book(database, hook)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    server = _serve(receiver_port)
    try:
        assert monitor.tick(T0 + MIN) == (0, 1)
    finally:
        server.shutdown()
    assert Receiver.rejected == 1 and Receiver.received == [] and book.pending() == 1


def test_an_alert_on_old_events_is_sent_not_resolved_unseen(database: Database) -> None:
    # A monitor catching up after days down, or a late batch ingested: the first tick is long after the
    # events, and the alert must still reach someone before it can resolve.
    sink = Collect()
    book = _book(database, sink)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    monitor.tick(T0 + 3 * timedelta(days=1))
    assert [p["rule_id"] for p in sink.payloads] == ["PW-MON-101"]
    monitor.tick(T0 + 5 * timedelta(days=1))
    assert [a.status for a in book.alerts(now=T0)] == ["resolved"]


def test_a_sink_that_raises_anything_is_a_failure_and_the_rows_after_it_still_go(database: Database) -> None:
    class Broken:
        name = "broken"

        def send(self, payload: Any) -> None:
            raise ValueError("header with a newline")

    good = Collect()
    book = _book(database, Broken(), good)
    monitor = Monitor(builtin_rules(), book=book)
    _brute(monitor)
    assert monitor.tick(T0 + MIN) == (1, 1)
    assert len(good.payloads) == 1 and book.pending() == 1
