"""The server's own Prometheus metrics: requests by method, route and status, and time spent."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import accumulate
from typing import Any

__all__ = ["CountRequests", "ServerMetrics"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs
    )
    return "{" + inner + "}" if inner else ""


class ServerMetrics:
    """Counters and a latency histogram, rendered in the Prometheus text format (version 0.0.4)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        # Per bucket, the requests whose time fell in it alone (the last: above every bound); the
        # histogram's cumulative counts are summed when rendered, so a request costs one increment.
        self._buckets = [0] * (len(_BUCKETS) + 1)
        self._count = 0
        self._sum = 0.0

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        key = (("method", method), ("route", route), ("status", str(status)))
        with self._lock:
            self._requests[key] += 1
            self._count += 1
            self._sum += seconds
            self._buckets[bisect_left(_BUCKETS, seconds)] += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP pipewarden_http_requests_total Requests answered, by method, route and status.",
                "# TYPE pipewarden_http_requests_total counter",
            ]
            lines += [
                f"pipewarden_http_requests_total{_labels(k)} {v}" for k, v in sorted(self._requests.items())
            ]
            lines += [
                "# HELP pipewarden_http_request_duration_seconds Time to answer a request.",
                "# TYPE pipewarden_http_request_duration_seconds histogram",
            ]
            lines += [
                f'pipewarden_http_request_duration_seconds_bucket{{le="{b}"}} {n}'
                for b, n in zip(_BUCKETS, accumulate(self._buckets[:-1]), strict=True)
            ]
            lines += [
                f'pipewarden_http_request_duration_seconds_bucket{{le="+Inf"}} {self._count}',
                f"pipewarden_http_request_duration_seconds_sum {self._sum:.6f}",
                f"pipewarden_http_request_duration_seconds_count {self._count}",
            ]
        return "\n".join(lines) + "\n"


class CountRequests:
    """ASGI middleware that counts every answered request into `metrics`: its method, the route that
    matched (the router leaves it in the scope) and the status, and the time until the answer was sent.

    Plain ASGI rather than a ``BaseHTTPMiddleware``: that one runs each request through an extra task
    and memory stream, a cost every request would pay for a counter."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, noting)
        if status:  # an exception escaped before any answer: the error handler outside counts nothing
            self.metrics.observe(
                method=str(scope.get("method", "")),
                route=getattr(scope.get("route"), "path", "unmatched"),
                status=status,
                seconds=time.perf_counter() - started,
            )
