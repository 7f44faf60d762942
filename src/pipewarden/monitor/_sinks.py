"""Where alert notifications go, behind one interface: `AlertSink.send(payload)`.

A sink raises `SinkError` when it could not deliver; the outbox (`AlertBook.deliver`) then keeps the
notification and tries again later. Sinks: the console, a JSON Lines file, a webhook (JSON body signed
with HMAC-SHA256 in ``X-Pipewarden-Signature: sha256=<hex>`` over the exact body bytes, and the time in
``X-Pipewarden-Timestamp``, which the signature covers too), a Slack-compatible webhook (``{"text":
...}``) and SMTP e-mail. A payload is ``pipewarden.alert/1``: the alert's fields (`Alert.to_dict`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import smtplib
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any, Protocol

from pipewarden.errors import ConfigError, SinkError

__all__ = [
    "AlertSink",
    "ConsoleSink",
    "JsonlSink",
    "SinkError",
    "SlackSink",
    "SmtpSink",
    "WebhookSink",
    "sign_body",
    "summary",
]

_TIMEOUT = 10.0


class AlertSink(Protocol):
    name: str

    def send(self, payload: Mapping[str, Any]) -> None: ...


def summary(payload: Mapping[str, Any]) -> str:
    """One line for people: severity, rule, title, labels, how many detections."""
    labels = ", ".join(f"{k}={v}" for k, v in sorted(dict(payload.get("labels", {})).items()))
    return (
        f"[{str(payload.get('severity', '')).upper()}] {payload.get('rule_id')} {payload.get('title')}"
        + (f" ({labels})" if labels else "")
        + f": {payload.get('detections')} detection(s) since {payload.get('first_seen')}"
    )


class ConsoleSink:
    def __init__(self, name: str = "console", stream: IO[str] | None = None) -> None:
        self.name = name
        self.stream = stream

    def send(self, payload: Mapping[str, Any]) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(summary(payload) + "\n")
            stream.flush()
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write ({exc})") from None


class JsonlSink:
    """Appends one JSON line per notification and flushes it to disk before returning."""

    def __init__(self, path: Path, name: str = "file") -> None:
        self.name = name
        self.path = path

    def send(self, payload: Mapping[str, Any]) -> None:
        line = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot append to {self.path} ({exc})") from None


def sign_body(secret: bytes, timestamp: str, body: bytes) -> str:
    """The webhook signature: HMAC-SHA256 over ``timestamp + "." + body``, hex."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: urllib would follow a POST's 302 with a GET and no body, and call the
    notification delivered."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _site(url: str) -> str:
    """A URL without its path and query, for messages: a Slack or webhook URL's path can be a secret."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def _post(url: str, body: bytes, headers: Mapping[str, str], name: str, timeout: float) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310
    site = _site(url)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise SinkError(f"{name}: {site} answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise SinkError(f"{name}: {site} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        raise SinkError(f"{name}: cannot reach {site} ({type(exc).__name__})") from None


def _check_url(url: str, name: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"sink {name}: the url is not a valid URL") from None
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or (port is not None and not 0 < port < 65536)
    ):
        raise ConfigError(f"sink {name}: the url must be http(s)://host[:port]/..., not {_site(url)}")
    return url


class WebhookSink:
    """POSTs the payload as JSON, signed with a shared secret (see the module docstring)."""

    def __init__(self, url: str, *, secret: bytes, name: str = "webhook", timeout: float = _TIMEOUT) -> None:
        if len(secret) < 16:
            raise ConfigError(f"sink {name}: the signing secret must be at least 16 bytes")
        self.name = name
        self.url = _check_url(url, name)
        self.secret = secret
        self.timeout = timeout

    def send(self, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
        stamp = str(int(time.time()))
        _post(
            self.url,
            body,
            {
                "Content-Type": "application/json",
                "X-Pipewarden-Timestamp": stamp,
                "X-Pipewarden-Signature": "sha256=" + sign_body(self.secret, stamp, body),
            },
            self.name,
            self.timeout,
        )


class SlackSink:
    """A Slack-compatible incoming webhook: ``{"text": "<summary>"}``."""

    def __init__(self, url: str, *, name: str = "slack", timeout: float = _TIMEOUT) -> None:
        self.name = name
        self.url = _check_url(url, name)
        self.timeout = timeout

    def send(self, payload: Mapping[str, Any]) -> None:
        body = json.dumps({"text": summary(payload)}).encode()
        _post(self.url, body, {"Content-Type": "application/json"}, self.name, self.timeout)


class SmtpSink:
    """E-mail through an SMTP server; STARTTLS unless `starttls=False` (a relay on loopback)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: tuple[str, ...],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        name: str = "email",
        timeout: float = _TIMEOUT,
    ) -> None:
        if not recipients:
            raise ConfigError(f"sink {name}: no recipients")
        self.name = name
        self.host, self.port = host, port
        self.sender, self.recipients = sender, recipients
        self.username, self.password = username, password
        self.starttls = starttls
        self.timeout = timeout

    def send(self, payload: Mapping[str, Any]) -> None:
        message = EmailMessage()
        # Labels come from event fields: a CR or LF in one must not become a header of its own.
        message["Subject"] = " ".join(summary(payload).split())[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(json.dumps(payload, indent=2, sort_keys=True, default=str))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
                if self.starttls:
                    # Verify the server's certificate and name: without a context, Python checks neither.
                    client.starttls(context=ssl.create_default_context())
                if self.username is not None and self.password is not None:
                    client.login(self.username, self.password)
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise SinkError(
                f"{self.name}: cannot send through {self.host}:{self.port} ({type(exc).__name__})"
            ) from None
