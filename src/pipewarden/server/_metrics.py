"""The server's own Prometheus metrics: requests by method, route and status, and time spent."""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["ServerMetrics"]

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
        self._buckets = [0] * len(_BUCKETS)
        self._count = 0
        self._sum = 0.0

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        key = (("method", method), ("route", route), ("status", str(status)))
        with self._lock:
            self._requests[key] += 1
            self._count += 1
            self._sum += seconds
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

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
                for b, n in zip(_BUCKETS, self._buckets, strict=True)
            ]
            lines += [
                f'pipewarden_http_request_duration_seconds_bucket{{le="+Inf"}} {self._count}',
                f"pipewarden_http_request_duration_seconds_sum {self._sum:.6f}",
                f"pipewarden_http_request_duration_seconds_count {self._count}",
            ]
        return "\n".join(lines) + "\n"
