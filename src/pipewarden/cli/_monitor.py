"""`pipewarden monitor ...`, `alerts ...` and `rules ...`: the monitor from the command line."""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption, emit_report
from pipewarden.errors import ConfigError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.events import Event
    from pipewarden.findings import Finding, Report
    from pipewarden.monitor import Detection, Rule
    from pipewarden.workspace import Workspace

monitor_app = typer.Typer(
    help="Rules and baselines over every event; alerts to people.", no_args_is_help=True
)
alerts_app = typer.Typer(help="Alerts: list, acknowledge, silence.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Detection rules: list the rules in force, test a rule file.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")
app.add_typer(rules_app, name="rules")

RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", "-r", help="A rule file of your own (repeatable); added to the built-in rules."),
]
NoBuiltinOption = Annotated[bool, typer.Option("--no-builtin", help="Leave out the built-in rules.")]
FormatOption = Annotated[
    str, typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help="text, json, sarif or html.")
]
OutputOption = Annotated[Path | None, typer.Option("-o", "--report", help="Write the report here.")]
FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on", envvar="PIPEWARDEN_FAIL_ON", help="Exit 1 on alerts at or above this severity."
    ),
]

_BAD_LINE = "PW-MON-001"
_STATE_CURSOR = "cursor"


# --- shared ---------------------------------------------------------------------------------------------


def handled(command: Callable[..., None]) -> Callable[..., None]:
    """Errors the way every command reports them: a message, exit 2 (usage) or 1 (a failed check)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except PipewardenError as exc:
            raise fail(exc) from None

    return run


def _rules(extra: list[Path] | None, no_builtin: bool) -> tuple[Rule, ...]:
    from pipewarden.monitor import builtin_rules, load_rules, merge_rules

    sets = [] if no_builtin else [builtin_rules()]
    sets.extend(load_rules(path) for path in extra or [])
    rules = merge_rules(*sets)
    if not rules:
        raise ConfigError("no rules: --no-builtin and no --rules file")
    return rules


def _lines(source: Path) -> Iterator[tuple[int, str]]:
    """(0-based line number, text) of a JSON Lines file, or of stdin for ``-``; blank lines skipped."""
    if str(source) == "-":
        for number, text in enumerate(sys.stdin):
            if text.strip():
                yield number, text
        return
    try:
        handle = source.open("r", encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            for number, text in enumerate(handle):
                if text.strip():
                    yield number, text
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _parse(source: Path) -> Iterator[tuple[int, Event | None, str]]:
    """Each line as (number, event, "") or (number, None, why it is not an event)."""
    from pipewarden.events import Event

    for number, text in _lines(source):
        try:
            yield number, Event.from_json(text, source=f"line {number + 1}"), ""
        except ConfigError as exc:
            yield number, None, str(exc)


def detection_finding(detection: Detection, *, path: str, row: int | None) -> Finding:
    """One detection as a finding: the rule as `rule_id`, the events behind it as `evidence`."""
    from pipewarden.findings import Finding, Location

    labels = dict(detection.group)
    last = detection.events[-1]
    facts = ", ".join(f"{k}={v}" for k, v in detection.facts.items() if not isinstance(v, list | dict))
    where = ", ".join(f"{k}={v}" for k, v in labels.items())
    return Finding(
        rule_id=detection.rule.id,
        severity=detection.rule.severity,
        title=detection.rule.title,
        message=(f"{where}: " if where else "")
        + (f"{facts}; " if facts else "")
        + f"last event: {last.actor} {last.action} {last.resource} {last.outcome}"
        + (f" from {last.origin}" if last.origin else ""),
        location=Location(path=path, row=row),
        evidence={
            "group": labels,
            "facts": detection.facts,
            "time": datetime.fromtimestamp(detection.time, UTC).isoformat().replace("+00:00", "Z"),
            "events": [event.to_dict() for event in detection.events],
        },
        references=detection.rule.techniques,
    )


def _bad_line(path: str, row: int, why: str) -> Finding:
    from pipewarden.findings import Finding, Location, Severity

    return Finding(
        rule_id=_BAD_LINE,
        severity=Severity.MEDIUM,
        title="line is not a valid event",
        message=why,
        location=Location(path=path, row=row),
        evidence={"line": row + 1},
    )


def _evaluate(engine: Any, events_file: Path, command: str) -> Report:
    """The engine's detections over a recorded file, as findings; a line that is not an event is a
    PW-MON-001 finding and the rest is still evaluated."""
    from pipewarden.findings import Report

    findings: list[Finding] = []
    path = str(events_file)
    read = 0
    for number, event, why in _parse(events_file):
        if event is None:
            findings.append(_bad_line(path, number, why))
            continue
        read += 1
        findings.extend(detection_finding(d, path=path, row=number) for d in engine.observe(event))
    return Report.build(command=command, findings=findings, targets=read)


def _severity(text: str) -> Any:
    from pipewarden.findings import Severity

    return Severity.parse(text)


# --- monitor replay -------------------------------------------------------------------------------------


@monitor_app.command("replay")
@handled
def replay(
    events_file: Annotated[
        Path, typer.Argument(help="Recorded events, one JSON event per line (- for stdin).")
    ],
    rules: RulesOption = None,
    no_builtin: NoBuiltinOption = False,
    fmt: FormatOption = "text",
    report: OutputOption = None,
    fail_on: FailOnOption = "medium",
) -> None:
    """Evaluate the rules over recorded events and print what they detect, as findings.

    Exit 0 when nothing at or above --fail-on was detected, 1 when something was, 2 on a usage error.
    Lines that are not valid events are findings (PW-MON-001), and the rest is still evaluated.
    """
    from pipewarden.monitor import Engine

    threshold = _severity(fail_on)
    result = _evaluate(Engine(_rules(rules, no_builtin)), events_file, "monitor replay")
    emit_report(result, fmt=fmt, output=report)
    raise typer.Exit(result.exit_code(threshold))


# --- monitor ingest -------------------------------------------------------------------------------------


@monitor_app.command("ingest")
@handled
def ingest(
    events_file: Annotated[
        Path, typer.Argument(help="Events from a stage that runs elsewhere, one per line (- for stdin).")
    ],
    workspace: WorkspaceOption = None,
) -> None:
    """Send events from elsewhere through the workspace's event path (audit log, then the monitor).

    Each line is checked as an event; a bad line is reported and kept, with the reason, in
    monitor/rejected.jsonl in the workspace, never dropped. Exit 1 when any line was rejected.
    """
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    who = acting(ws)
    who.authorize("monitor.ingest", "monitor:events")
    from rich.markup import escape

    from pipewarden.events import Event

    events = ws.events()
    rejected_path = ws.root / "monitor" / "rejected.jsonl"
    accepted = rejected = 0
    for number, text in _lines(events_file):
        try:
            event = Event.from_json(text, source=f"line {number + 1}")
            # Who sent it goes with it: an ingested event is the sender's word, not pipewarden's own record.
            event = replace(event, attributes={**event.attributes, "ingested_by": who.actor.name})
        except ConfigError as exc:
            rejected += 1
            _keep_rejected(rejected_path, source=str(events_file), line=number + 1, why=str(exc), text=text)
            err_console().print(
                f"[yellow]{escape(str(events_file))}: line {number + 1} rejected[/]: {escape(str(exc))}"
            )
            continue
        events.emit(event)
        accepted += 1
    who.emit(
        "monitor.ingest",
        "monitor:events",
        "allowed",
        {"source": str(events_file)[:1024], "accepted": accepted, "rejected": rejected},
    )
    print(
        f"{events_file}: {accepted} event(s) accepted, {rejected} rejected"
        + (f" (kept in {rejected_path})" if rejected else "")
    )
    raise typer.Exit(1 if rejected else 0)


def _keep_rejected(path: Path, *, source: str, line: int, why: str, text: str | None) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"source": source, "line": line, "error": why, "text": text if text is not None else None}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- monitor run and serve-metrics ------------------------------------------------------------------------


def _open_monitor(ws: Workspace) -> Any:
    """The workspace's monitor with its settings, its baselines restored, and its correlation windows
    rebuilt from the events of the longest window before where the last run stopped (without alerting),
    so an attack spanning two runs is still seen whole."""
    from pipewarden.cli._acting import acting
    from pipewarden.monitor import AlertBook, Monitor
    from pipewarden.monitor._config import MonitorConfig

    config = MonitorConfig.for_workspace(ws.root)
    book = AlertBook(
        ws.database(), sinks=config.sinks, routes=config.routes, timing=config.timing, acting=acting(ws)
    )
    monitor = Monitor(config.rules, book=book)
    monitor.load_state(ws.database())
    with ws.database().transaction(write=False) as conn:
        cursor = _state(conn, _STATE_CURSOR)
    if cursor is not None:
        start = int(cursor["seq"]) + 1
        for entry in ws.audit_log().records(int(cursor.get("prime_from", start)), start - 1):
            monitor.engine.prime(entry.event)
    return monitor


_STATE_LEASE = "lease"
#: A follower that has not renewed its lease for this long is taken to be gone.
_LEASE_SECONDS = 120.0
_OWNER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _state(conn: Any, name: str) -> dict[str, Any] | None:
    from sqlalchemy import select

    from pipewarden.db import monitor_state

    row = conn.execute(select(monitor_state.c.body).where(monitor_state.c.name == name)).first()
    return dict(json.loads(row.body)) if row is not None else None


def _put_state(conn: Any, name: str, doc: dict[str, Any]) -> None:
    from pipewarden.db import monitor_state

    body, now = json.dumps(doc), datetime.now(UTC)
    done = conn.execute(
        monitor_state.update().where(monitor_state.c.name == name).values(body=body, updated_at=now)
    ).rowcount
    if not done:
        conn.execute(monitor_state.insert().values(name=name, body=body, updated_at=now))


def _take_lease(ws: Workspace) -> None:
    """One follower per workspace: two would each see part of the events and send alerts twice."""
    from pipewarden.db._database import LOCK_MONITOR

    db = ws.database()
    with db.transaction() as conn:
        db.lock(conn, LOCK_MONITOR)
        lease = _state(conn, _STATE_LEASE)
        now = datetime.now(UTC).timestamp()
        if lease is not None and lease["owner"] != _OWNER and now - float(lease["at"]) < _LEASE_SECONDS:
            raise ConfigError(
                f"another monitor ({lease['owner']}) is following this workspace; run one at a time "
                f"(its lease ends {_LEASE_SECONDS:.0f} s after its last pass)"
            )
        _put_state(conn, _STATE_LEASE, {"owner": _OWNER, "at": now})


def _release_lease(ws: Workspace) -> None:
    db = ws.database()
    with db.transaction() as conn:
        lease = _state(conn, _STATE_LEASE)
        if lease is not None and lease["owner"] == _OWNER:
            _put_state(conn, _STATE_LEASE, {"owner": _OWNER, "at": 0.0})


def _one_pass(ws: Workspace, monitor: Any, *, alert_on_history: bool) -> tuple[int, int]:
    """Read the audit records after the cursor; returns (events read, detections)."""
    _take_lease(ws)
    log, db = ws.audit_log(), ws.database()
    with db.transaction(write=False) as conn:
        cursor = _state(conn, _STATE_CURSOR)
    start = 1 if cursor is None else int(cursor["seq"]) + 1
    read = found = 0
    last = start - 1
    warming = cursor is None and not alert_on_history
    span = monitor.engine.longest_window()
    recent: deque[tuple[int, float]] = deque()  # (seq, time) of the events inside the longest window
    for entry in log.records(start):
        if warming:
            monitor.engine.learn(entry.event)
            monitor.engine.prime(entry.event)
        else:
            found += len(monitor.observe(entry.event))
        read += 1
        last = entry.seq
        when = entry.event.time.timestamp()
        recent.append((entry.seq, when))
        while recent and recent[0][1] < when - span:
            recent.popleft()
    if recent:
        prime_from = recent[0][0]
    else:
        prime_from = int(cursor.get("prime_from", start)) if cursor is not None else start
    # The cursor and the baselines in one transaction: a crash leaves both as they were, and the pass is
    # read again (its detections may then be recorded twice; no event is skipped).
    with db.transaction() as conn:
        _put_state(conn, _STATE_CURSOR, {"seq": last, "prime_from": prime_from})
        monitor.save_state(db, conn=conn)
    return read, found


@monitor_app.command("run")
@handled
def run(
    workspace: WorkspaceOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new events until interrupted.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between looks at the log when following.")
    ] = 2.0,
    alert_on_history: Annotated[
        bool,
        typer.Option(
            "--alert-on-history",
            help="On the first run, alert on the events already in the log "
            "(default: learn baselines from them).",
        ),
    ] = False,
) -> None:
    """Evaluate the rules over the audit log's new events, raise alerts, and deliver notifications.

    The first run learns each principal's baselines from the history already in the log (warm start)
    and alerts only on what comes after; later runs continue where the last one stopped.
    """
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    monitor = _open_monitor(ws)
    first = True
    try:
        while True:
            read, found = _one_pass(ws, monitor, alert_on_history=alert_on_history)
            delivered, failed = monitor.tick()
            if read or delivered or failed or not follow or first:
                first = False
                err_console().print(
                    f"monitor: {read} event(s) read, {found} detection(s), {delivered} notification(s) sent"
                    + (f", {failed} failed (kept in the outbox)" if failed else "")
                )
                sys.stderr.flush()  # a follower's lines must reach a pipe (a log collector) as they happen
            if not follow:
                break
            alert_on_history = True
            time.sleep(max(interval, 0.1))
    except KeyboardInterrupt:
        pass
    finally:
        _release_lease(ws)


@monitor_app.command("serve-metrics")
@handled
def serve_metrics(
    workspace: WorkspaceOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 9464,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=3600.0, help="Seconds between looks at the log.")
    ] = 2.0,
) -> None:
    """Follow the audit log like `monitor run --follow` and serve Prometheus metrics at /metrics."""
    import http.server
    import ipaddress
    import threading

    from pipewarden.workspace import Workspace

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            f"--host {host}: the metrics endpoint is served on loopback only (put a proxy in front)"
        )
    ws = Workspace.open(workspace)
    monitor = _open_monitor(ws)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the standard library's name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = monitor.metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    try:
        server = http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen ({exc.strerror})") from None
    threading.Thread(target=server.serve_forever, name="pipewarden-metrics", daemon=True).start()
    err_console().print(f"metrics at http://{host}:{server.server_address[1]}/metrics")
    sys.stderr.flush()
    try:
        while True:
            _one_pass(ws, monitor, alert_on_history=True)
            monitor.tick()
            time.sleep(max(interval, 0.1))
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        _release_lease(ws)


# --- alerts ---------------------------------------------------------------------------------------------


def _book(ws: Workspace) -> Any:
    """The alert book for people's commands: no sinks needed (listing, acknowledging and silencing must
    work on a machine that does not hold the pager's secrets)."""
    from pipewarden.cli._acting import acting
    from pipewarden.monitor import AlertBook

    return AlertBook(ws.database(), acting=acting(ws))


@alerts_app.command("list")
@handled
def alerts_list(
    workspace: WorkspaceOption = None,
    status: Annotated[
        str, typer.Option("--status", help="Comma-separated: firing, acknowledged, resolved.")
    ] = "firing,acknowledged",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """The alerts, worst first."""
    from pipewarden.cli import _remote
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    if (client := _remote.remote()) is not None and fmt == "text":
        _remote.alerts_list(client, status)
        return

    ws = Workspace.open(workspace)
    who = acting(ws)
    statuses = [s.strip() for s in status.split(",") if s.strip()]
    found = who.perform(
        "alert.read",
        "alert:*",
        lambda: _book(ws).alerts(status=statuses),
        describe=lambda a: {"count": len(a)},
    )
    if fmt == "json":
        print(json.dumps([a.to_dict() for a in found], indent=2, sort_keys=True))
        return
    if fmt != "text":
        raise ConfigError(f"--format {fmt}: choose text or json")
    if not found:
        print("no alerts")
    for alert in found:
        labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items())
        silenced = f" silenced by {alert.silenced_by}" if alert.silenced_by else ""
        print(
            f"{alert.id:>5}  {alert.severity.label:<8} {alert.status:<12} {alert.rule_id}  {alert.title}"
            f"{' (' + labels + ')' if labels else ''}  x{alert.detections}"
            f"  last {alert.last_seen:%Y-%m-%d %H:%M}Z{silenced}"
        )


@alerts_app.command("ack")
@handled
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's number.")], workspace: WorkspaceOption = None
) -> None:
    """Acknowledge an alert: someone is on it. It is not notified again; once it has been quiet for a day
    it resolves, and a later detection opens a new alert."""
    from pipewarden.cli import _remote
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    if (client := _remote.remote()) is not None:
        _remote.alerts_ack(client, alert_id)
        return

    ws = Workspace.open(workspace)
    who = acting(ws)
    who.authorize("alert.ack", f"alert:{alert_id}")
    alert = _book(ws).acknowledge(alert_id, by=who.actor.name)
    print(f"alert {alert.id} acknowledged ({alert.rule_id} {alert.title})")


@alerts_app.command("silence")
@handled
def alerts_silence(
    match: Annotated[
        list[str],
        typer.Option(
            "--match", "-m", help="LABEL=GLOB, e.g. rule_id=PW-MON-105 or resource=user:ci-*; repeatable."
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 4h, 2d (at most 30d).")] = "4h",
    workspace: WorkspaceOption = None,
) -> None:
    """Silence matching alerts for a while, with a reason; they are still recorded and listed."""
    from pipewarden.cli._acting import acting
    from pipewarden.monitor._rules import parse_duration
    from pipewarden.workspace import Workspace

    matchers: dict[str, str] = {}
    for item in match:
        label, sep, pattern = item.partition("=")
        if not sep or not label or not pattern:
            raise ConfigError(f"--match {item!r}: expected LABEL=GLOB")
        matchers[label] = pattern
    seconds = parse_duration(duration, where="--for")
    ws = Workspace.open(workspace)
    who = acting(ws)
    who.authorize("alert.silence", "alert:*")
    silence = _book(ws).silence(
        matchers, reason=reason, duration=timedelta(seconds=seconds), by=who.actor.name
    )
    print(f"silence {silence.id} until {silence.ends_at:%Y-%m-%d %H:%M}Z: {silence.matchers}")


@alerts_app.command("silences")
@handled
def alerts_silences(workspace: WorkspaceOption = None) -> None:
    """Silences, active and ended."""
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    found = acting(ws).perform(
        "alert.read", "alert:*", lambda: _book(ws).silences(), describe=lambda s: {"count": len(s)}
    )
    now = datetime.now(UTC)
    if not found:
        print("no silences")
    for silence in found:
        state = "active" if silence.active(now) else "ended"
        print(
            f"{silence.id:>5}  {state:<7} until {silence.ends_at:%Y-%m-%d %H:%M}Z  {silence.matchers}"
            f"  by {silence.created_by}: {silence.reason}"
        )


@alerts_app.command("expire")
@handled
def alerts_expire(
    silence_id: Annotated[int, typer.Argument(help="The silence's number.")],
    workspace: WorkspaceOption = None,
) -> None:
    """End a silence now."""
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    who = acting(ws)
    who.authorize("alert.silence", "alert:*")
    _book(ws).expire(silence_id)
    print(f"silence {silence_id} ended")


# --- rules ----------------------------------------------------------------------------------------------


@rules_app.command("list")
@handled
def rules_list(
    rules: RulesOption = None,
    no_builtin: NoBuiltinOption = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """The rules in force: id, severity, techniques, title."""
    found = _rules(rules, no_builtin)
    if fmt == "json":
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "title": r.title,
                        "severity": r.severity.label,
                        "techniques": list(r.techniques),
                        "kind": r.correlation.kind
                        if r.correlation
                        else (f"baseline:{r.baseline.check}" if r.baseline else "match"),
                        "origin": r.origin,
                    }
                    for r in found
                ],
                indent=2,
            )
        )
        return
    if fmt != "text":
        raise ConfigError(f"--format {fmt}: choose text or json")
    for rule in found:
        print(f"{rule.id:<12} {rule.severity.label:<8} {','.join(rule.techniques):<28} {rule.title}")


@rules_app.command("test")
@handled
def rules_test(
    rule_file: Annotated[Path, typer.Argument(help="A rule file to check.")],
    events_file: Annotated[
        Path | None, typer.Option("--events", help="Recorded events to run the file's rules over.")
    ] = None,
    fmt: FormatOption = "text",
) -> None:
    """Check a rule file (an error names the line), and optionally run its rules over recorded events.

    Exit 0 when the file is valid (and, with --events, when its rules detect nothing), 1 when they
    detect something, 2 when the file is invalid.
    """
    from pipewarden.monitor import Engine, load_rules

    loaded = load_rules(rule_file)
    if events_file is None:
        print(f"{rule_file}: {len(loaded)} rule(s), valid: {', '.join(r.id for r in loaded)}")
        return
    result = _evaluate(Engine(loaded), events_file, "rules test")
    emit_report(result, fmt=fmt, output=None)
    raise typer.Exit(1 if result.findings else 0)
