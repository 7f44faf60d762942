"""TLS: a running server's handshake and certificate (``--url``), or a certificate file (``--tls-cert``).

With a URL the server is asked three times: a handshake at TLS 1.2 or newer that accepts any
certificate (to read the certificate and judge it here, against the injected time), a handshake that
verifies the chain against ``--ca`` or the system's trust store (the host name is judged here, from
the subjectAltName as RFC 6125 says, never the common name), and a handshake that offers only TLS 1.0
and 1.1 (which a server must refuse; RFC 8996 deprecates both). Nothing is sent over any of them.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import warnings
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding

__all__ = ["TlsTarget", "check_tls", "parse_url"]

#: OpenSSL's verify codes for a certificate outside its validity window: judged by PW-POST-102 against
#: the time posture is given, not by the chain check (X509_V_ERR_CERT_NOT_YET_VALID, _HAS_EXPIRED).
_DATE_CODES = frozenset({9, 10})
_MAX_CHAIN = 10
_MIN_RSA_BITS = 2048
_MIN_EC_BITS = 256


class TlsTarget:
    """A URL to check, reduced to what is safe to show: scheme, host and port (never user info)."""

    __slots__ = ("host", "port", "scheme")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port

    @property
    def site(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_url(url: str) -> TlsTarget:
    """Read ``--url``; `ConfigError` (naming only its scheme and host) unless it is http(s)://host[:port]."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("--url: not a valid URL (expected https://host:port)") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"--url {scheme or '?'}://{parts.hostname or '?'}: expected https://host[:port]")
    return TlsTarget(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def check_tls(
    *,
    url: str | None,
    tls_cert: Path | None,
    ca: Path | None,
    now: datetime,
    baseline: PostureBaseline,
) -> CheckResult:
    """The TLS check: the server at `url`, the certificate file `tls_cert`, or neither (not checked)."""
    if url is None and tls_cert is None:
        return CheckResult(
            "tls",
            (
                finding(
                    "PW-POST-100",
                    "no --url or --tls-cert was given and the workspace configures no server: TLS was not "
                    "checked",
                    location=Location(path="tls"),
                ),
            ),
        )
    found: list[Finding] = []
    if tls_cert is not None:
        found.extend(_check_file(tls_cert, ca=ca, now=now, baseline=baseline))
    if url is not None:
        found.extend(_check_server(parse_url(url), ca=ca, now=now, baseline=baseline))
    return CheckResult("tls", tuple(found))


# --- a running server ----------------------------------------------------------------------------------


def _connect(target: TlsTarget, context: ssl.SSLContext, timeout: float) -> tuple[str, bytes | None]:
    """One handshake with `context`; the protocol version and the server's certificate (DER)."""
    with (
        socket.create_connection((target.host, target.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=target.host) as tls,
    ):
        return tls.version() or "", tls.getpeercert(binary_form=True)


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    # Read the certificate whatever it is; it is judged below, not trusted.
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _old_protocols() -> ssl.SSLContext:
    """A context that offers only TLS 1.0 and 1.1, at the security level that still allows them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Deprecated on purpose: offering them is how a server that accepts them is found.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _undetermined(place: Location, message: str, **facts: object) -> list[Finding]:
    return [finding("PW-POST-109", message, location=place, evidence={"target": place.path, **facts})]


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _check_server(
    target: TlsTarget, *, ca: Path | None, now: datetime, baseline: PostureBaseline
) -> list[Finding]:
    place = Location(path=target.site)
    if target.scheme == "http":
        return [
            finding(
                "PW-POST-101",
                f"{target.site}: served over plain HTTP; credentials and tokens cross the network in the "
                "clear",
                location=place,
                evidence={"url": target.site},
            )
        ]
    timeout = baseline.probe_timeout
    found: list[Finding] = []
    try:
        version, der = _connect(target, _unverified(), timeout)
    except ssl.SSLError as exc:
        why = exc.reason or type(exc).__name__
        found += _undetermined(
            place, f"{target.site}: no TLS 1.2 or newer handshake ({why}); the certificate could not be read"
        )
        version, der = "", None
    except OSError as exc:
        return _undetermined(place, f"{target.site}: cannot connect ({_why(exc)})", reason=_why(exc))
    if der is not None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return [
                *found,
                *_undetermined(place, f"{target.site}: the server's certificate cannot be parsed"),
            ]
        found.extend(_judge(cert, place=place, now=now, baseline=baseline, protocol=version))
        if not _host_matches(target.host, cert):
            dns, ips = _names(cert)
            names = ", ".join([*dns, *map(str, ips)]) or "no name"
            found.append(
                finding(
                    "PW-POST-104",
                    f"{target.site}: the certificate is for {names}, not {target.host}",
                    location=place,
                    evidence={"host": target.host, "dns_names": dns, "ip_addresses": [str(i) for i in ips]},
                )
            )
        found.extend(_chain(target, place=place, ca=ca, timeout=timeout))
    found.extend(_old_protocol(target, place=place, timeout=timeout))
    return found


def _chain(target: TlsTarget, *, place: Location, ca: Path | None, timeout: float) -> list[Finding]:
    trust = str(ca) if ca is not None else "the system trust store"
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        return _undetermined(place, f"{ca}: the CA file cannot be read ({exc.strerror or exc})", ca=str(ca))
    context.check_hostname = False  # the name is judged by PW-POST-104
    try:
        _connect(target, context, timeout)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _DATE_CODES:
            return []
        return [
            finding(
                "PW-POST-105",
                f"{target.site}: the certificate does not verify against {trust}: {exc.verify_message}",
                location=place,
                evidence={"trusted": trust, "verify_code": exc.verify_code, "reason": exc.verify_message},
            )
        ]
    except OSError as exc:
        return _undetermined(place, f"{target.site}: the verifying handshake failed ({_why(exc)})")
    return []


def _old_protocol(target: TlsTarget, *, place: Location, timeout: float) -> list[Finding]:
    try:
        if not (ssl.HAS_TLSv1 or ssl.HAS_TLSv1_1):
            raise ValueError("this machine's TLS library has neither")
        context = _old_protocols()
    except (ValueError, ssl.SSLError) as exc:
        return _undetermined(
            place, f"{target.site}: cannot offer TLS 1.0 or 1.1 from here ({exc}); not checked"
        )
    try:
        version, _ = _connect(target, context, timeout)
    except (ssl.SSLError, ConnectionResetError, ConnectionAbortedError):
        return []  # refused (an alert, or the connection dropped at the hello): as it should be
    except OSError as exc:
        return _undetermined(place, f"{target.site}: the old-protocol handshake failed ({_why(exc)})")
    return [
        finding(
            "PW-POST-106",
            f"{target.site}: accepts {version or 'a protocol older than TLS 1.2'}",
            location=place,
            evidence={"protocol": version},
        )
    ]


# --- a certificate file --------------------------------------------------------------------------------


def _check_file(path: Path, *, ca: Path | None, now: datetime, baseline: PostureBaseline) -> list[Finding]:
    place = Location(path=str(path))
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        return _undetermined(place, f"{path}: cannot be read ({_why(exc)})")
    except ValueError:
        return _undetermined(place, f"{path}: holds no PEM certificate")
    found = _judge(certs[0], place=place, now=now, baseline=baseline, protocol=None)
    if ca is not None:
        try:
            anchors = x509.load_pem_x509_certificates(ca.read_bytes())
        except (OSError, ValueError):
            found += _undetermined(place, f"{ca}: the CA file cannot be read as PEM certificates", ca=str(ca))
        else:
            broken = _chain_problem(certs, anchors)
            if broken is not None:
                found.append(
                    finding(
                        "PW-POST-105",
                        f"{path}: the chain does not verify against {ca}: {broken}",
                        location=place,
                        evidence={"trusted": str(ca), "reason": broken},
                    )
                )
    return found


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _chain_problem(certs: list[x509.Certificate], anchors: list[x509.Certificate]) -> str | None:
    """None when the file's first certificate chains, through the file's others, to one of `anchors`."""
    current, pool = certs[0], list(certs[1:])
    for _ in range(_MAX_CHAIN):
        if any(_issued_by(current, anchor) for anchor in anchors):
            return None
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            return f"nothing given issued {current.subject.rfc4514_string() or 'the certificate'}"
        pool.remove(issuer)
        current = issuer
    return f"the chain is longer than {_MAX_CHAIN} certificates"


# --- judging one certificate ---------------------------------------------------------------------------


def _judge(
    cert: x509.Certificate,
    *,
    place: Location,
    now: datetime,
    baseline: PostureBaseline,
    protocol: str | None,
) -> list[Finding]:
    subject = cert.subject.rfc4514_string()
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    facts: dict[str, object] = {
        "subject": subject,
        "not_before": start.isoformat(),
        "not_after": end.isoformat(),
    }
    if protocol:
        facts["protocol"] = protocol
    where = place.path
    found: list[Finding] = []
    if now < start:
        found.append(
            finding(
                "PW-POST-102", f"{where}: not valid before {start:%Y-%m-%d}", location=place, evidence=facts
            )
        )
    elif now >= end:
        days = (now - end).days
        found.append(
            finding(
                "PW-POST-102",
                f"{where}: expired on {end:%Y-%m-%d} ({days} days ago)",
                location=place,
                evidence=facts,
            )
        )
    elif end - now <= baseline.cert_expiry_warning:
        days = (end - now).days
        found.append(
            finding(
                "PW-POST-103",
                f"{where}: expires on {end:%Y-%m-%d}, in {days} days",
                location=place,
                evidence={**facts, "days_left": days},
            )
        )
    weak_key = _weak_key(cert)
    if weak_key is not None:
        found.append(
            finding(
                "PW-POST-107", f"{where}: {weak_key}", location=place, evidence={**facts, "key": weak_key}
            )
        )
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if isinstance(algorithm, hashes.SHA1 | hashes.MD5):
        found.append(
            finding(
                "PW-POST-108",
                f"{where}: signed with {algorithm.name.upper()}, which collisions break",
                location=place,
                evidence={**facts, "signature_hash": algorithm.name},
            )
        )
    return found


def _weak_key(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "a public key of a kind this check does not know"
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        return f"a {kind} key of {key.key_size} bits (fewer than {_MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < _MIN_EC_BITS:
        return f"an EC key on {key.curve.name} ({key.curve.key_size} bits, fewer than {_MIN_EC_BITS})"
    return None


def _names(cert: x509.Certificate) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    ]
    return list(san.get_values_for_type(x509.DNSName)), ips


def _host_matches(host: str, cert: x509.Certificate) -> bool:
    """RFC 6125 section 6.4: an address against the IP entries; a name against the DNS entries, exactly or
    by a wildcard standing for the whole left-most label of a name with at least three labels."""
    dns, ips = _names(cert)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return address in ips
    wanted = host.lower().rstrip(".")
    first, _, rest = wanted.partition(".")
    for name in dns:
        pattern = name.lower().rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "*" not in pattern[2:] and "." in pattern[2:]:
            if first and rest == pattern[2:]:
                return True
    return False
