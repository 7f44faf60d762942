"""What every response and request goes through: security headers, body limits, rate limits.

Pure ASGI middleware (no buffering of bodies): a request body larger than its limit is refused as it
streams in, and the limit for uploads is separate from the limit for everything else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "RateLimit", "SecurityHeaders", "TokenBuckets", "security_headers"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The dashboard's pages load their own scripts and styles only; nothing may frame them.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy", _CSP.encode()),
    (b"cache-control", b"no-store"),
]
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def security_headers(*, tls: bool) -> dict[str, str]:
    """The headers `SecurityHeaders` adds, for a response sent outside it: the handler of unexpected
    errors runs in Starlette's outermost middleware, around every middleware of the app."""
    return {name.decode(): value.decode() for name, value in (*_HEADERS, *([_HSTS] if tls else []))}


async def _problem(
    send: Send, scope: Scope, status: int, kind: str, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    """An RFC 9457 problem document, as `_problems.problem` makes them, for a refusal made before the app."""
    body = json.dumps(
        {
            "type": f"urn:pipewarden:problem:{kind}",
            "title": kind.replace("-", " "),
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the security headers to every response (HSTS only when served over TLS)."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.extra = [*_HEADERS, _HSTS] if tls else list(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in self.extra if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses a body over its limit with 413, by its Content-Length or as it streams in."""

    def __init__(
        self, app: ASGIApp, *, default: int, uploads: int, upload_routes: tuple[tuple[str, str], ...]
    ) -> None:
        self.app = app
        self.default = default
        self.uploads = uploads
        self.upload_routes = upload_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method = scope.get("method", "")
        upload = any(method == m and path.startswith(prefix) for m, prefix in self.upload_routes)
        limit = self.uploads if upload else self.default
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _problem(send, scope, 413, "too-large", f"the request body is over {limit} bytes", [])
            return
        seen = 0
        started = False
        answered = False

        async def counted() -> Message:
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not started:
                    # Answer here, and tell the app the client went away. An exception raised here would
                    # meet the app's own handlers first (a JSON body parser makes it a 400, a route a
                    # 500); so the 413 is sent now and whatever the app still answers is dropped.
                    answered = True
                    await _problem(
                        send, scope, 413, "too-large", f"the request body is over {limit} bytes", []
                    )
                    return {"type": "http.disconnect"}
                if seen > limit:
                    raise _TooLarge  # a response is under way already: end it
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except Exception:
            if not answered:
                raise
            # The app failed reading the body it was refused (the client "went away"); the 413 is sent.
            logger.debug("%s %s: the request body went over %s bytes", method, path, limit)


class _TooLarge(Exception):
    pass


class TokenBuckets:
    """Token buckets per key (a principal, an origin), bounded in number: `allow(key)` spends one."""

    def __init__(self, *, per_minute: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else how many seconds until the next request would be."""
        return self.allow_all((key,), now)

    def allow_all(self, keys: tuple[str, ...], now: float | None = None) -> float:
        """`allow` for one request counted against each of `keys` (an origin and a credential), under
        one lock and one reading of the clock; the longest wait."""
        now = time.monotonic() if now is None else now
        longest = 0.0
        buckets = self._buckets
        with self._lock:
            for key in keys:
                tokens, last = buckets.pop(key, (self.burst, now))
                tokens = min(self.burst, tokens + (now - last) * self.rate)
                wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
                buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
                longest = max(longest, wait)
            while len(buckets) > self.max_keys:
                buckets.popitem(last=False)
        return longest


class RateLimit:
    """Per origin (the client's address) and per presented credential; 429 with Retry-After."""

    def __init__(self, app: ASGIApp, *, per_minute: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute=per_minute)
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        origin = f"origin:{client[0] if client else 'unknown'}"
        credential = _credential(scope.get("headers", ()))
        # Keyed by a digest of the credential: the raw token never sits in memory longer than needed.
        keys = (
            (origin, "credential:" + hashlib.sha256(credential).hexdigest()[:32]) if credential else (origin,)
        )
        wait = self.buckets.allow_all(keys)
        if wait > 0:
            await _problem(
                send,
                scope,
                429,
                "rate-limited",
                "too many requests",
                [(b"retry-after", str(int(wait) + 1).encode())],
            )
            return
        await self.app(scope, receive, send)


def _credential(headers: Any) -> bytes:
    """The request's Authorization header, else its session cookie's value (b"" without either)."""
    cookie = b""
    for name, value in headers:
        if name == b"authorization":
            return bytes(value)
        if name == b"cookie" and not cookie:
            cookie = _cookie(value)
    return cookie


def _cookie(raw: bytes) -> bytes:
    for part in raw.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == b"pw_session":
            return value
    return b""
