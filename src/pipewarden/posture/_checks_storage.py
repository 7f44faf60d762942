"""The connections to where records and artifacts live: the database and the S3 endpoint.

PostgreSQL is reached with libpq's rules (psycopg 3): ``sslmode`` from the URL, else ``$PGSSLMODE``,
else ``prefer``, which falls back to an unencrypted connection without a word. A connection over a
Unix socket or to a loopback address never leaves the machine and needs no TLS. The S3 endpoint is
``store.s3.endpoint_url``, else ``$AWS_ENDPOINT_URL_S3`` or ``$AWS_ENDPOINT_URL`` (which boto3
honours), else AWS's own endpoint, which is HTTPS. Only a URL's scheme, host and port are ever shown:
a database URL carries a password and an endpoint URL may carry keys. A setting that cannot be judged,
or any error a check did not plan for, is PW-POST-139.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pipewarden.db import DATABASE_URL_ENV
from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import CheckResult, finding
from pipewarden.posture._guard import guarded, logged
from pipewarden.workspace import Workspace

__all__ = ["check_storage", "is_loopback"]

#: libpq's sslmode values that may connect without TLS at all.
_UNENCRYPTED = frozenset({"disable", "allow", "prefer"})
_VERIFYING = frozenset({"verify-ca", "verify-full"})
_S3_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: ``localhost`` or a loopback address."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_storage(ws: Workspace) -> list[CheckResult]:
    """The database connection (PW-POST-131, 132) and, for an S3 store, its endpoint (133)."""
    place = Location(path=str(ws.root / "config.yaml"))
    results = [guarded("database-connection", rule="PW-POST-139", place=place, run=_database)]
    if ws.config.backend == "s3":
        results.append(guarded("s3-endpoint", rule="PW-POST-139", place=place, run=lambda: _s3_endpoint(ws)))
    return results


def _shown(parsed: URL) -> str:
    """The URL without its password and query (which may hold one too)."""
    return parsed.set(query={}).render_as_string(hide_password=True)


def _first(query: Mapping[str, str | tuple[str, ...]], key: str) -> str | None:
    value = query.get(key)
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def _database() -> list[Finding]:
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        return []  # SQLite in the workspace: a file, no connection to secure
    place = Location(path=f"${DATABASE_URL_ENV}")
    try:
        parsed = make_url(url)
    except ArgumentError:  # its message repeats the URL, password and all: not shown
        return [finding("PW-POST-139", f"${DATABASE_URL_ENV}: not a database URL", location=place)]
    except ValueError as exc:  # a port that is not a number
        return [
            finding(
                "PW-POST-139",
                f"${DATABASE_URL_ENV}: not a database URL ({logged('database-connection', exc)})",
                location=place,
                evidence={"error": type(exc).__name__},
            )
        ]
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return []
    shown = _shown(parsed)
    place = Location(path=shown)
    if backend != "postgresql":
        return [
            finding(
                "PW-POST-139",
                f"{shown}: a {backend} database, which pipewarden does not use",
                location=place,
            )
        ]
    query = parsed.query
    hosts = [h for h in (parsed.host, _first(query, "host"), _first(query, "hostaddr")) if h]
    if not hosts or all(h.startswith("/") or is_loopback(h) for h in hosts):
        return []  # a Unix socket or loopback: the connection stays on this machine
    given = _first(query, "sslmode")
    mode = (given or os.environ.get("PGSSLMODE") or "prefer").strip().lower()
    origin = "the URL" if given else ("$PGSSLMODE" if os.environ.get("PGSSLMODE") else "libpq's default")
    facts = {"database": shown, "sslmode": mode, "sslmode_from": origin}
    if mode in _UNENCRYPTED:
        return [
            finding(
                "PW-POST-131",
                f"{shown}: sslmode={mode} (from {origin}) lets the connection go unencrypted; passwords, "
                "password hashes and the audit log cross the network",
                location=place,
                evidence=facts,
            )
        ]
    if mode == "require" and not _first(query, "sslrootcert") and not os.environ.get("PGSSLROOTCERT"):
        # libpq: require with a root certificate verifies the chain, like verify-ca.
        return [
            finding(
                "PW-POST-132",
                f"{shown}: sslmode=require encrypts but does not check who answers; anyone in the path can "
                "impersonate the server",
                location=place,
                evidence=facts,
            )
        ]
    if mode != "require" and mode not in _VERIFYING:
        return [finding("PW-POST-139", f"{shown}: sslmode={mode} is not a libpq mode", location=place)]
    return []


def _s3_endpoint(ws: Workspace) -> list[Finding]:
    endpoint, origin = ws.config.s3_endpoint_url, "store.s3.endpoint_url"
    if not endpoint:
        for variable in _S3_ENV:
            if os.environ.get(variable):
                endpoint, origin = os.environ[variable], f"${variable}"
                break
    if not endpoint:
        return []  # AWS's own endpoint, over HTTPS
    place = Location(path=str(ws.root / "config.yaml"), member=origin)
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return [finding("PW-POST-139", f"{origin}: not a valid URL", location=place)]
    host = parts.hostname or ""
    scheme = parts.scheme.lower()
    site = f"{scheme}://{host}" + (f":{port}" if port else "")
    if scheme not in {"http", "https"} or not host:
        return [finding("PW-POST-139", f"{origin}: {site} is not an http(s) endpoint", location=place)]
    if scheme == "http" and not is_loopback(host):
        return [
            finding(
                "PW-POST-133",
                f"{origin}: {site} is plain HTTP; the store's requests and answers cross the network "
                "in the clear, open to being read and replayed",
                location=place,
                evidence={"endpoint": site, "from": origin},
            )
        ]
    return []
