"""`RemoteClient`: the server's API over HTTPS, with the standard library only.

The server's certificate is always verified (against `ca`, else the system's trust store); plain HTTP
is refused unless the server is on a loopback address. Errors come back as problem documents and are
raised as the same pipewarden errors the library raises, so the CLI maps them to the same exit codes.
Downloads are written to a temporary file, checked against the digest the server announces, and only
then renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pipewarden import errors as e

__all__ = ["RemoteClient"]

_CHUNK = 1024 * 1024
_KINDS: dict[str, type[e.PipewardenError]] = {
    "authentication-failed": e.AuthenticationFailed,
    "second-factor-needed": e.SecondFactorNeeded,
    "login-throttled": e.AuthenticationFailed,
    "access-denied": e.AccessDenied,
    "not-found": e.ArtifactNotFound,
    "already-exists": e.ArtifactExists,
    "integrity": e.IntegrityError,
    "refused-by-scan": e.StoreError,
    "unsafe-model": e.ScanError,
    "refused-by-guard": e.GuardError,
    "bad-data": e.DataError,
    "database-unavailable": e.DatabaseError,
}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RemoteClient:
    """One server, one credential (a session or API token, and or a client certificate), one verified
    TLS context.

    `client_cert` (PEM, the chain) and `client_key` (PEM; none when the certificate file holds it)
    are presented in the handshake for mutual TLS: a server that trusts their CA and has the
    certificate registered to a service account takes it as that account's credential.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca: Path | None = None,
        timeout: float = 60.0,
        client_cert: Path | None = None,
        client_key: Path | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise e.ConfigError(f"--server {url!r}: give https://HOST[:PORT]")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise e.ConfigError(f"--server {url!r}: plain HTTP only to a loopback address; use https://")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.token = token
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            try:
                self.context = ssl.create_default_context(cafile=str(ca) if ca else None)
            except (OSError, ssl.SSLError) as exc:
                raise e.ConfigError(f"{ca}: cannot load the server's CA: {exc}") from None
            self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_key is not None and client_cert is None:
            raise e.ConfigError(f"--client-key {client_key}: give --client-cert with it")
        if client_cert is not None:
            if self.context is None:
                raise e.ConfigError(f"--client-cert {client_cert}: a client certificate needs https://")
            try:
                self.context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
            except (OSError, ssl.SSLError) as exc:
                raise e.ConfigError(
                    f"{client_cert}: cannot load the client certificate and its key: {exc}"
                ) from None

    # --- plumbing -----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        length: int | None = None,
        content_type: str | None = None,
    ) -> Any:
        url = self.url + urllib.parse.quote(path, safe="/@")
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        headers = {"accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["content-type"] = "application/json"
        elif content_type:
            headers["content-type"] = content_type
        if length is not None:
            headers["content-length"] = str(length)
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310  # https or loopback http, checked above
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self.context)  # noqa: S310  # as above
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise e.ConfigError(f"{self.url}: cannot reach the server: {reason}") from None

    def _error(self, exc: urllib.error.HTTPError) -> e.PipewardenError:
        try:
            problem = json.loads(exc.read(64 * 1024) or b"{}")
        except (ValueError, OSError):
            problem = {}
        kind = str(problem.get("type", "")).rpartition(":")[2]
        detail = str(problem.get("detail") or exc.reason or f"HTTP {exc.code}")
        family = _KINDS.get(kind)
        if family is None:
            family = e.ConfigError if 400 <= exc.code < 500 else e.PipewardenError
        if kind == "refused-by-scan":
            from pipewarden.findings import Report

            # The server's scan refused the file; its findings stay on the server (its refusals list).
            return e.ArtifactRefused(detail, report=Report.build(command="scan", findings=(), targets=1))
        if family is e.AccessDenied:
            return e.AccessDenied(detail)
        if family is e.IntegrityError:
            return e.IntegrityError(detail)
        return family(detail)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as response:
            return json.loads(response.read())

    # --- the API ------------------------------------------------------------------------------------

    def login(
        self, name: str, password: str, *, totp_code: str | None = None, recovery_code: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "password": password, "totp_code": totp_code, "recovery_code": recovery_code}
        found: dict[str, Any] = self._json("POST", "/v1/session", json_body=body)
        return found

    def logout(self) -> dict[str, Any]:
        found: dict[str, Any] = self._json("DELETE", "/v1/session")
        return found

    def whoami(self) -> dict[str, Any]:
        found: dict[str, Any] = self._json("GET", "/v1/whoami")
        return found

    def artifacts(self, name: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/v1/artifacts")["artifacts"]
        return [a for a in found if name is None or a["name"] == name]

    def put(
        self, file: Path, *, name: str, parents: tuple[str, ...] = (), media_type: str | None = None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"parent": list(parents)}
        if media_type:
            query["media_type"] = media_type
        size = file.stat().st_size
        with file.open("rb") as body:
            found: dict[str, Any] = self._json(
                "PUT",
                f"/v1/artifacts/{name}",
                query=query,
                data=body,
                length=size,
                content_type="application/octet-stream",
            )
        return found

    def _resolve(self, ref: str) -> tuple[str, int]:
        name, _, version = ref.rpartition("@") if "@" in ref else (ref, "", "")
        if version:
            if not version.isdigit():
                raise e.ConfigError(f"{ref!r}: a version is a number")
            return name, int(version)
        versions = [a["version"] for a in self.artifacts(name)]
        if not versions:
            raise e.ArtifactNotFound(f"{name}: no such artifact (or none you may list)")
        return name, max(versions)

    def get(self, ref: str, dest: Path) -> dict[str, Any]:
        """Download `ref` to `dest`: written to a temporary file beside it, its SHA-256 checked against
        what the server announced, then renamed into place."""
        name, version = self._resolve(ref)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        digest = hashlib.sha256()
        try:
            with (
                self._request("GET", f"/v1/artifacts/{name}/versions/{version}/content") as response,
                os.fdopen(fd, "wb") as out,
            ):
                expected = response.headers.get("x-pipewarden-sha256", "")
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if not expected or digest.hexdigest() != expected:
                raise e.IntegrityError(
                    f"{name}@{version}: the bytes received do not match the digest the server announced"
                )
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return {"ref": f"{name}@{version}", "sha256": digest.hexdigest()}

    def verify(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._json("POST", f"/v1/artifacts/{name}/verify")
        return found

    def lineage(self, ref: str) -> dict[str, Any]:
        name, version = self._resolve(ref)
        found: dict[str, Any] = self._json("GET", f"/v1/artifacts/{name}/versions/{version}/lineage")
        return found

    def audit_records(self, *, limit: int = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/v1/audit/records", query={"limit": limit})[
            "records"
        ]
        return found

    def audit_verify(self) -> dict[str, Any]:
        found: dict[str, Any] = self._json("POST", "/v1/audit/verify")
        return found

    def alerts(self, *, status: str = "firing,acknowledged") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/v1/alerts", query={"status": status})["alerts"]
        return found

    def acknowledge(self, alert_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._json("POST", f"/v1/alerts/{alert_id}/ack")
        return found
