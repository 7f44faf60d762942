"""TLS for the server: the context (TLS 1.2 or newer, forward-secret AEAD ciphers, optional client
certificates), ``--tls auto``'s self-signed certificate kept in the workspace, and the uvicorn protocol
that tells the app which client certificate a connection presented.

uvicorn does not put the peer's certificate in the ASGI scope. `TlsScopeProtocol` (uvicorn's h11
protocol, given to ``uvicorn.Config(http=...)``) reads it from each connection once the handshake is
done and adds the ASGI TLS extension (``scope["extensions"]["tls"]``, with ``client_cert_chain``) to
every request made on that connection. With ``ssl.CERT_OPTIONAL`` the handshake has already refused a
certificate the client CA did not issue, so a certificate found here is one the CA vouches for; who it
is, if anyone, is the identity part's decision (`ClientCertificates`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipewarden.errors import ConfigError

__all__ = [
    "TlsFiles",
    "TlsScopeProtocol",
    "auto_certificate",
    "fingerprint",
    "server_context",
    "tls_extension",
]

# TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's suites are always AEAD).
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path


def server_context(files: TlsFiles, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server context: TLS 1.2+, modern ciphers; with `client_ca`, clients may present a certificate
    it issued (mutual TLS for service accounts), and one it did not issue is refused in the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{files.cert}: cannot load the certificate and key {files.key}: {exc}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{client_ca}: cannot load the client CA: {exc}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER form, as browsers show it (AA:BB:...)."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def auto_certificate(folder: Path, *, hosts: list[str], days: int = 365) -> TlsFiles:
    """The workspace's self-signed certificate for `hosts`, made on first use (key mode 0600) and made
    again when it expires within a week or does not name every host."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = TlsFiles(folder / "server.pem", folder / "server.key")
    now = dt.datetime.now(dt.UTC)
    if files.cert.is_file() and files.key.is_file():
        current = x509.load_pem_x509_certificate(files.cert.read_bytes())
        names = _names(current)
        if current.not_valid_after_utc - now > dt.timedelta(days=7) and set(hosts) <= names:
            return files
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1"]):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(files.key, key_pem, 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _names(cert: object) -> set[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --- the peer's certificate, into the ASGI scope ------------------------------------------------------

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension's fields for a connection (None without TLS): the client's certificate
    as PEM in ``client_cert_chain`` (empty when it presented none), its subject, and the version."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    name = None
    if der:
        subject: Any = (ssl_object.getpeercert() or {}).get("subject", ())
        name = ",".join(f"{key}={value}" for rdn in reversed(subject) for key, value in rdn) or None
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class _WithTls:
    """The app, called with the connection's TLS extension in each HTTP request's scope."""

    def __init__(self, app: ASGI3Application, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] in ("http", "websocket"):
            extensions = {**(scope.get("extensions") or {}), "tls": self.tls}
            scope = cast("Scope", {**scope, "extensions": extensions})
        await self.app(scope, receive, send)


class TlsScopeProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, adding the connection's TLS extension to each request's scope
    (``uvicorn.Config(..., http=TlsScopeProtocol)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is not None:
            self.app = _WithTls(self.app, tls)
