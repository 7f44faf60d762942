"""Alerts: whether they are routed to people, over what, whether the sinks answer, and whether the
monitor's outbox holds notifications it has failed to deliver.

The settings are the monitor's own (``monitor.yaml``, read as `pipewarden monitor run` reads it, so
the environment variables it names must be set where posture runs). Reachability is a TCP connection
to each network sink's host and port with a short timeout: nothing is sent, no alert, no HELO. Only a
sink's scheme, host and port are shown, never its URL's path (a Slack URL's path is its secret). Any
error a check did not plan for makes it not determinable (PW-POST-159).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import func, select

from pipewarden.db import Database, monitor_outbox
from pipewarden.findings import Finding, Location, Severity
from pipewarden.monitor import AlertSink, SlackSink, SmtpSink, WebhookSink
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding
from pipewarden.posture._checks_storage import is_loopback
from pipewarden.posture._guard import failure, guarded, logged

if TYPE_CHECKING:
    from pipewarden.monitor._config import MonitorConfig

__all__ = ["check_monitor"]


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """Where a network sink delivers: its kind, host and port, and whether the way there is encrypted."""

    kind: str
    host: str
    port: int
    encrypted: bool

    @property
    def site(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _endpoint(sink: AlertSink) -> _Endpoint | None:
    if isinstance(sink, WebhookSink | SlackSink):
        parts = urlsplit(sink.url)
        https = parts.scheme.lower() == "https"
        kind = "webhook" if isinstance(sink, WebhookSink) else "slack"
        return _Endpoint(kind, parts.hostname or "", parts.port or (443 if https else 80), https)
    if isinstance(sink, SmtpSink):
        return _Endpoint("smtp", sink.host, sink.port, sink.starttls)
    return None  # the console and a file: on this machine


def check_monitor(
    root: Path, database: Callable[[], Database], *, probe: bool, baseline: PostureBaseline
) -> list[CheckResult]:
    """Routing and transport (PW-POST-150, 151, 153), reachability (152, 155) and the outbox (154)."""
    from pipewarden.monitor._config import CONFIG_FILE, MonitorConfig

    place = Location(path=str(root / CONFIG_FILE))
    delivery = guarded("alert-delivery", rule="PW-POST-159", place=place, run=lambda: _outbox(root, database))
    try:
        config = MonitorConfig.for_workspace(root)
    except Exception as exc:  # whatever the reason, the monitor cannot start with these settings
        return [
            CheckResult(
                "alert-routing", (finding("PW-POST-150", logged("alert-routing", exc), location=place),)
            ),
            CheckResult(
                "sink-reachability",
                (
                    finding(
                        "PW-POST-159",
                        "the alert sinks are unknown: the monitor settings cannot be loaded (PW-POST-150)",
                        location=place,
                    ),
                ),
            ),
            delivery,
        ]
    try:
        network = {name: e for name, sink in config.sinks.items() if (e := _endpoint(sink)) is not None}
    except Exception as exc:  # a sink whose address cannot be read: where alerts go is unknown
        return [
            CheckResult(check, (failure("PW-POST-159", check, place, exc),))
            for check in ("alert-routing", "sink-reachability")
        ] + [delivery]
    routing = guarded(
        "alert-routing", rule="PW-POST-159", place=place, run=lambda: _routing(config, network, place)
    )
    results = [routing]
    if network:
        results.append(
            guarded(
                "sink-reachability",
                rule="PW-POST-159",
                place=place,
                run=lambda: _reachability(network, place, probe, baseline),
            )
        )
    results.append(delivery)
    return results


def _routing(config: MonitorConfig, network: dict[str, _Endpoint], place: Location) -> list[Finding]:
    """High alerts routed to a network sink (PW-POST-151), and each network sink encrypted (153)."""
    routing: list[Finding] = []
    to_people = [
        route
        for route in config.routes
        if route.min_severity <= Severity.HIGH and any(name in network for name in route.sinks)
    ]
    if not to_people:
        routed = sorted({name for route in config.routes for name in route.sinks})
        routing.append(
            finding(
                "PW-POST-151",
                "high alerts reach no webhook, slack or smtp sink (they go to "
                f"{', '.join(routed) or 'nothing'}): nobody is told unless they watch this machine",
                location=place,
                evidence={"sinks": sorted(config.sinks), "routed": routed},
            )
        )
    for name, endpoint in sorted(network.items()):
        if endpoint.encrypted or is_loopback(endpoint.host):
            continue
        how = "over plain HTTP" if endpoint.kind != "smtp" else "without STARTTLS"
        routing.append(
            finding(
                "PW-POST-153",
                f"sink {name}: alerts go to {endpoint.site} {how}, readable and alterable on the way",
                location=Location(path=place.path, member=f"sink {name}"),
                evidence={"sink": name, "type": endpoint.kind, "endpoint": endpoint.site},
            )
        )
    return routing


def _reachability(
    network: dict[str, _Endpoint], place: Location, probe: bool, baseline: PostureBaseline
) -> list[Finding]:
    if not probe:
        return [
            finding(
                "PW-POST-155",
                f"{len(network)} network sink(s) ({', '.join(sorted(network))}) were not probed (--no-probe)",
                location=place,
                evidence={"sinks": sorted(network)},
            )
        ]
    found = []
    for name, endpoint in sorted(network.items()):
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=baseline.probe_timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            found.append(
                finding(
                    "PW-POST-152",
                    f"sink {name}: cannot connect to {endpoint.site} ({reason})",
                    location=Location(path=place.path, member=f"sink {name}"),
                    evidence={
                        "sink": name,
                        "type": endpoint.kind,
                        "endpoint": endpoint.site,
                        "reason": reason,
                    },
                )
            )
    return found


def _outbox(root: Path, database: Callable[[], Database]) -> list[Finding]:
    """Notifications the monitor tried to deliver and could not: the sink failed in production."""
    place = Location(path=str(root), member="monitor outbox")
    o = monitor_outbox.c
    pending = (o.delivered_at.is_(None), o.attempts > 0)
    try:
        db = database()
        with db.transaction(write=False) as conn:
            groups = conn.execute(
                select(o.sink, func.count(), func.max(o.attempts), func.min(o.created_at))
                .where(*pending)
                .group_by(o.sink)
                .order_by(o.sink)
            ).all()
            errors: dict[str, str | None] = {}
            for sink, error in conn.execute(
                select(o.sink, o.last_error).where(*pending).order_by(o.id.desc())
            ):
                errors.setdefault(sink, error)  # the newest failure of each sink
    except Exception as exc:  # unreachable, a URL that does not parse, a driver error: not determinable
        return [
            finding(
                "PW-POST-159",
                f"the monitor's outbox cannot be read: {logged('alert-delivery', exc)}",
                location=place,
            )
        ]
    found = []
    for sink, count, attempts, oldest in groups:
        error = errors.get(sink) or "none recorded"
        found.append(
            finding(
                "PW-POST-154",
                f"sink {sink}: {count} notification(s) undelivered, the oldest since {oldest:%Y-%m-%d %H:%M} "
                f"UTC, after up to {attempts} attempt(s); last error: {error}",
                location=Location(path=place.path, member=f"sink {sink}"),
                evidence={
                    "sink": sink,
                    "undelivered": int(count),
                    "attempts": int(attempts),
                    "since": oldest.isoformat(),
                    "last_error": error,
                },
            )
        )
    return found
