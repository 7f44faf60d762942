"""The monitor's settings: `monitor.yaml` in the workspace (optional).

```yaml
rules: [rules/ours.yaml]            # more rule files, relative to the workspace, after the built-in ones
builtin: true                       # false: only the files above
timing: {group_wait: 30s, group_interval: 5m, repeat_interval: 4h, resolve_after: 24h}
sinks:
  - {name: console, type: console}
  - {name: file, type: jsonl, path: monitor/alerts.jsonl}
  - {name: hook, type: webhook, url: "https://alerts.example/in", secret_env: PIPEWARDEN_WEBHOOK_SECRET}
  - {name: chat, type: slack, url_env: PIPEWARDEN_SLACK_URL}
  - {name: mail, type: smtp, host: smtp.example, port: 587, sender: pw@example, recipients: [sec@example],
     username: pw, password_env: PIPEWARDEN_SMTP_PASSWORD}
routes:
  - {min_severity: high, sinks: [hook, mail]}
  - {min_severity: medium, sinks: [file, console]}
```

Secrets (a webhook's signing secret, an SMTP password, a Slack URL) are named by environment variable,
never written in the file. Without a file: the built-in rules, console and `monitor/alerts.jsonl` for
medium and above.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.monitor._alerts import Route, Timing
from pipewarden.monitor._rules import Rule, builtin_rules, load_rules, merge_rules, parse_duration
from pipewarden.monitor._sinks import AlertSink, ConsoleSink, JsonlSink, SlackSink, SmtpSink, WebhookSink

__all__ = ["CONFIG_FILE", "MonitorConfig"]

CONFIG_FILE = "monitor.yaml"


@dataclass
class MonitorConfig:
    rules: tuple[Rule, ...]
    sinks: dict[str, AlertSink] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    timing: Timing = field(default_factory=Timing)

    @classmethod
    def for_workspace(cls, root: Path) -> MonitorConfig:
        path = root / CONFIG_FILE
        if not path.exists():
            return cls.from_doc({}, root=root, source=str(path))
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            raise ConfigError(
                f"{path}: cannot read the monitor settings ({type(exc).__name__}: {exc})"
            ) from None
        return cls.from_doc(doc or {}, root=root, source=str(path))

    @classmethod
    def from_doc(cls, doc: Any, *, root: Path, source: str) -> MonitorConfig:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{source}: the monitor settings are a mapping")
        unknown = sorted(set(doc) - {"rules", "builtin", "timing", "sinks", "routes"})
        if unknown:
            raise ConfigError(f"{source}: unknown setting {unknown[0]!r}")
        sets = [builtin_rules()] if doc.get("builtin", True) is not False else []
        files = _list(doc, "rules", source)
        sets.extend(load_rules(root / str(name), source=str(root / str(name))) for name in files)
        rules = merge_rules(*sets)
        if not rules:
            raise ConfigError(f"{source}: no rules (builtin is false and no rule files are named)")
        if "sinks" not in doc and "routes" not in doc:
            # No say on where alerts go: the console and a file, medium and above (never nowhere).
            doc = {
                **doc,
                "sinks": [
                    {"name": "console", "type": "console"},
                    {"name": "file", "type": "jsonl", "path": "monitor/alerts.jsonl"},
                ],
                "routes": [{"min_severity": "medium", "sinks": ["console", "file"]}],
            }
        sinks: dict[str, AlertSink] = {}
        for item in _list(doc, "sinks", source):
            sink = _sink(item, root=root, source=source)
            if sink.name in sinks:
                raise ConfigError(f"{source}: two sinks named {sink.name!r}")
            sinks[sink.name] = sink
        routes = []
        for item in _list(doc, "routes", source):
            if not isinstance(item, Mapping) or set(item) != {"min_severity", "sinks"}:
                raise ConfigError(f"{source}: a route is {{min_severity: ..., sinks: [...]}}, not {item!r}")
            try:
                severity = Severity.parse(str(item["min_severity"]))
            except ConfigError as exc:
                raise ConfigError(f"{source}: route: {exc}") from None
            names = tuple(str(n) for n in _list(item, "sinks", f"{source}: route for {severity.label}"))
            for name in names:
                if name not in sinks:
                    raise ConfigError(f"{source}: route for {severity.label} names no sink {name!r}")
            routes.append(Route(severity, names))
        timing_doc = doc.get("timing", {}) or {}
        if not isinstance(timing_doc, Mapping):
            raise ConfigError(f"{source}: timing is a mapping")
        unknown = sorted(
            set(timing_doc) - {"group_wait", "group_interval", "repeat_interval", "resolve_after"}
        )
        if unknown:
            raise ConfigError(f"{source}: unknown timing {unknown[0]!r}")
        timing = Timing(
            **{
                name: timedelta(seconds=parse_duration(value, where=f"{source}: timing.{name}"))
                for name, value in timing_doc.items()
            }
        )
        if sinks and not routes:
            raise ConfigError(f"{source}: sinks but no routes: no alert would reach anyone")
        return cls(rules=rules, sinks=sinks, routes=tuple(routes), timing=timing)


def _list(doc: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = doc.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key} is a list, not {value!r:.60}")
    return value


def _env(item: Mapping[str, Any], key: str, source: str, name: str) -> str:
    variable = item.get(key)
    if not isinstance(variable, str) or not variable:
        raise ConfigError(f"{source}: sink {name} needs {key} (the environment variable holding it)")
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{source}: sink {name}: environment variable {variable} is not set")
    return value


def _sink(item: Any, *, root: Path, source: str) -> AlertSink:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item.get("type"):
        raise ConfigError(f"{source}: a sink needs a name and a type, not {item!r}")
    name, kind = str(item["name"]), str(item["type"])
    if kind == "console":
        return ConsoleSink(name)
    if kind == "jsonl":
        return JsonlSink(root / str(item.get("path", f"monitor/{name}.jsonl")), name)
    if kind == "webhook":
        secret = _env(item, "secret_env", source, name).encode()
        return WebhookSink(str(item.get("url", "")), secret=secret, name=name)
    if kind == "slack":
        return SlackSink(_env(item, "url_env", source, name), name=name)
    if kind == "smtp":
        recipients = item.get("recipients") or []
        if (
            not isinstance(recipients, list)
            or not recipients
            or not item.get("host")
            or not item.get("sender")
        ):
            raise ConfigError(f"{source}: sink {name} needs a host, a sender and a list of recipients")
        password = _env(item, "password_env", source, name) if "password_env" in item else None
        port = item.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{source}: sink {name}: port must be a number from 1 to 65535, not {port!r}")
        return SmtpSink(
            str(item.get("host", "")),
            port,
            sender=str(item.get("sender", "")),
            recipients=tuple(str(r) for r in recipients),
            username=str(item["username"]) if "username" in item else None,
            password=password,
            starttls=bool(item.get("starttls", True)),
            name=name,
        )
    raise ConfigError(f"{source}: sink {name}: type {kind!r} is not console, jsonl, webhook, slack or smtp")
