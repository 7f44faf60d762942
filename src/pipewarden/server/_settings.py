"""The server's settings: where it listens, its TLS, its limits. Valid on construction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pipewarden.errors import ConfigError

__all__ = ["ServerSettings"]

_MiB = 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How `pipewarden serve` runs.

    TLS is the default: `tls_cert` and `tls_key` (PEM files), or `tls_auto` (a self-signed certificate
    kept in the workspace). `insecure_http` serves plain HTTP, and only on a loopback address.
    `client_ca` turns on mutual TLS: clients may present a certificate issued by it. Limits are per
    replica: `max_json_bytes` for request bodies other than uploads, `max_upload_bytes` for artifact
    uploads, and `rate_per_minute` requests per principal and per origin. `token_cache_seconds` is how
    long a token that worked is trusted from memory (0: every request asks the database); a revocation
    made through another replica or the command line reaches this one within that time. CORS stays
    closed: the API sends no cross-origin headers, and the dashboard is served from the same origin.
    """

    workspace: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_auto: bool = False
    insecure_http: bool = False
    client_ca: Path | None = None
    max_json_bytes: int = 1 * _MiB
    max_upload_bytes: int = 16 * 1024 * _MiB
    rate_per_minute: int = 600
    token_cache_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port {self.port}: not a TCP port")
        chosen = sum(
            [self.tls_cert is not None or self.tls_key is not None, self.tls_auto, self.insecure_http]
        )
        if chosen > 1:
            raise ConfigError("choose one of --tls-cert/--tls-key, --tls auto and --insecure-http")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if chosen == 0:
            raise ConfigError("TLS is required: give --tls-cert and --tls-key, or --tls auto")
        if self.insecure_http and not is_loopback(self.host):
            raise ConfigError(
                f"--insecure-http serves plain HTTP only on a loopback address, not {self.host}"
            )
        if self.client_ca is not None and self.insecure_http:
            raise ConfigError("--client-ca (mutual TLS) needs TLS")
        for name in ("max_json_bytes", "max_upload_bytes", "rate_per_minute"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if not 0 <= self.token_cache_seconds <= 60:
            raise ConfigError(
                f"token_cache_seconds {self.token_cache_seconds}: between 0 (no cache) and 60 seconds"
            )

    @property
    def tls(self) -> bool:
        return not self.insecure_http
