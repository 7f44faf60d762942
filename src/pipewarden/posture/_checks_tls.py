"""TLS: a running server's handshake and certificates (``--url``), or a certificate file (``--tls-cert``).

With a URL the server is asked up to four times, and nothing is sent over any handshake:

- a handshake at TLS 1.2 or newer that accepts any certificate, to read what the server sends and
  judge it here, against the injected time: its own certificate (dates, key, signature, and the host
  name, from the subjectAltName as RFC 6125 says, never the common name) and the dates of every other
  certificate it sends (intermediates);
- a handshake that verifies the chain against ``--ca`` or the system's trust store, by this machine's
  clock. OpenSSL's "expired" or "not yet valid" (verify codes 9 and 10) is left to PW-POST-102 only
  when a certificate the server sent is out of its window; the chain is then verified once more with
  dates ignored, so that nothing else wrong with it hides behind them. Otherwise the certificate out
  of its window is one the server did not send (a trusted CA), and the chain does not verify (105);
- a handshake that offers only TLS 1.0 and 1.1 (RFC 8996 deprecates both). This machine's TLS library
  must first be able to put such an offer together: one that cannot (a FIPS or crypto-policy host)
  leaves the question open (PW-POST-109), never passed. The server refused them only when it answers
  with an alert, hangs up (a reset, an end of file) or picks a newer protocol; any other failure
  leaves the question open too.

A certificate file is judged the same way, and its chain is built offline, through the file's other
certificates, to ``--ca`` or else the system's trust store; every certificate on the way is dated.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding
from pipewarden.posture._guard import logged
from pipewarden.posture._tls_certs import (
    host_matches,
    judge,
    judge_window,
    names,
    out_of_window,
    subject_of,
    system_anchors,
    walk_chain,
)

__all__ = ["TlsTarget", "check_tls", "parse_url"]

#: OpenSSL's verify codes for a certificate outside its validity window (X509_V_ERR_CERT_NOT_YET_VALID,
#: X509_V_ERR_CERT_HAS_EXPIRED).
_DATE_CODES = frozenset({9, 10})
#: X509_V_FLAG_NO_CHECK_TIME (OpenSSL 1.1.0 and later), which Python's ssl module does not name.
_NO_CHECK_TIME = ssl.VerifyFlags(0x200000)
#: What OpenSSL says when the server answered a TLS 1.0/1.1 offer with a protocol the client did not
#: offer: it refused them as surely as with an alert.
_NEWER_CHOSEN = frozenset({"UNSUPPORTED_PROTOCOL", "WRONG_SSL_VERSION", "VERSION_TOO_HIGH"})


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
        found.extend(
            _safely(
                Location(path=str(tls_cert)), lambda: _check_file(tls_cert, ca=ca, now=now, baseline=baseline)
            )
        )
    if url is not None:
        target = parse_url(url)
        found.extend(
            _safely(
                Location(path=target.site), lambda: _check_server(target, ca=ca, now=now, baseline=baseline)
            )
        )
    return CheckResult("tls", tuple(found))


def _safely(place: Location, run: Callable[[], list[Finding]]) -> list[Finding]:
    """`run()`'s findings, or PW-POST-109 naming the error if it raises anything at all."""
    try:
        return list(run())
    except Exception as exc:  # fail closed: what could not be checked is said, never a crash
        return _undetermined(
            place, f"{place.path}: could not be checked: {logged('tls', exc)}", error=type(exc).__name__
        )


# --- a running server ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handshake:
    """What one handshake showed: the protocol version and the certificates the server sent (DER, its
    own first; only its own where this Python cannot read the rest)."""

    version: str
    chain: tuple[bytes, ...]


def _served_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    """The certificates the server sent, as sent. Python 3.13 names the call; 3.10 to 3.12 have it on
    the connection object underneath. Without either, only the server's own certificate."""
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        return tuple(bytes(der) for der in public() or ())
    private = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    der_encoding = getattr(getattr(ssl, "_ssl", None), "ENCODING_DER", None)
    if private is not None and der_encoding is not None:
        return tuple(bytes(cert.public_bytes(der_encoding)) for cert in private() or ())
    own = tls.getpeercert(binary_form=True)
    return (own,) if own else ()


def _connect(target: TlsTarget, context: ssl.SSLContext, timeout: float) -> _Handshake:
    """One handshake with `context`."""
    with (
        socket.create_connection((target.host, target.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=target.host) as tls,
    ):
        return _Handshake(tls.version() or "", _served_chain(tls))


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    # Read the certificate whatever it is; it is judged below, not trusted.
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _verifying(ca: Path | None, *, check_time: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.check_hostname = False  # the name is judged by PW-POST-104
    if not check_time:
        context.verify_flags |= _NO_CHECK_TIME
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


def _can_offer(context: ssl.SSLContext) -> None:
    """Raise `ssl.SSLError` unless `context` can write a ClientHello at all (into memory, sent nowhere):
    a library whose policy forbids every protocol or cipher offered fails here, before any server is
    asked (NO_PROTOCOLS_AVAILABLE, NO_CIPHERS_AVAILABLE)."""
    hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    try:
        hello.do_handshake()
    except ssl.SSLWantReadError:
        return  # the hello is written and waits for an answer: the offer can be made


def _refused(exc: ssl.SSLError) -> bool:
    """Whether the failed TLS 1.0/1.1 handshake is the server refusing: its alert, hanging up at the
    hello, or choosing a protocol that was not offered."""
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return True
    reason = exc.reason or ""
    return "ALERT" in reason or reason in _NEWER_CHOSEN


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
        shake: _Handshake | None = _connect(target, _unverified(), timeout)
    except ssl.SSLError as exc:
        why = exc.reason or type(exc).__name__
        found += _undetermined(
            place, f"{target.site}: no TLS 1.2 or newer handshake ({why}); the certificate could not be read"
        )
        shake = None
    except OSError as exc:
        return _undetermined(place, f"{target.site}: cannot connect ({_why(exc)})", reason=_why(exc))
    if shake is not None:
        found += _judge_served(target, shake, place=place, ca=ca, now=now, baseline=baseline)
    found.extend(_old_protocol(target, place=place, timeout=timeout))
    return found


def _judge_served(
    target: TlsTarget,
    shake: _Handshake,
    *,
    place: Location,
    ca: Path | None,
    now: datetime,
    baseline: PostureBaseline,
) -> list[Finding]:
    if not shake.chain:
        return _undetermined(place, f"{target.site}: the server sent no certificate")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in shake.chain]
    except ValueError:
        return _undetermined(place, f"{target.site}: a certificate the server sent cannot be parsed")
    leaf = certs[0]
    found = judge(leaf, place=place, now=now, baseline=baseline, protocol=shake.version)
    for cert in certs[1:]:
        label = f"the chain's certificate {subject_of(cert)}"
        found += judge_window(cert, place=place, now=now, baseline=baseline, label=label)
    if not host_matches(target.host, leaf):
        dns, ips = names(leaf)
        shown = ", ".join([*dns, *map(str, ips)]) or "no name"
        found.append(
            finding(
                "PW-POST-104",
                f"{target.site}: the certificate is for {shown}, not {target.host}",
                location=place,
                evidence={"host": target.host, "dns_names": dns, "ip_addresses": [str(i) for i in ips]},
            )
        )
    # OpenSSL dates the chain by this machine's clock: are the certificates it saw out of their window?
    clock = datetime.now(UTC)
    dated = any(out_of_window(cert, clock) for cert in certs)
    found.extend(_chain(target, place=place, ca=ca, timeout=baseline.probe_timeout, dated=dated))
    return found


def _not_verified(
    target: TlsTarget, place: Location, trust: str, exc: ssl.SSLCertVerificationError
) -> Finding:
    return finding(
        "PW-POST-105",
        f"{target.site}: the certificate does not verify against {trust}: {exc.verify_message}",
        location=place,
        evidence={"trusted": trust, "verify_code": exc.verify_code, "reason": exc.verify_message},
    )


def _chain(
    target: TlsTarget, *, place: Location, ca: Path | None, timeout: float, dated: bool
) -> list[Finding]:
    """PW-POST-105 unless the chain verifies against `ca` or the system trust store. `dated`: a
    certificate the server sent is out of its window by this machine's clock (and reported as 102)."""
    trust = str(ca) if ca is not None else "the system trust store"
    try:
        context = _verifying(ca)
    except (OSError, ssl.SSLError) as exc:
        return _undetermined(place, f"{ca}: the CA file cannot be read ({exc.strerror or exc})", ca=str(ca))
    try:
        _connect(target, context, timeout)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code not in _DATE_CODES:
            return [_not_verified(target, place, trust, exc)]
        if not dated:
            # Out of its window, yet none the server sent is: a CA certificate from `trust` is.
            return [_not_verified(target, place, trust, exc)]
    except OSError as exc:
        return _undetermined(place, f"{target.site}: the verifying handshake failed ({_why(exc)})")
    else:
        return []
    # The dates are reported already (102); is anything else wrong with the chain?
    try:
        _connect(target, _verifying(ca, check_time=False), timeout)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _DATE_CODES:
            return []  # a TLS library that cannot ignore dates: the dates are the problem, reported
        return [_not_verified(target, place, trust, exc)]
    except OSError as exc:
        return _undetermined(place, f"{target.site}: the verifying handshake failed ({_why(exc)})")
    return []


def _old_protocol(target: TlsTarget, *, place: Location, timeout: float) -> list[Finding]:
    try:
        if not (ssl.HAS_TLSv1 or ssl.HAS_TLSv1_1):
            raise ValueError("its TLS library has neither")
        context = _old_protocols()
        _can_offer(context)
    except (ValueError, ssl.SSLError) as exc:
        why = (exc.reason if isinstance(exc, ssl.SSLError) else None) or str(exc)
        return _undetermined(
            place,
            f"{target.site}: this machine cannot offer TLS 1.0 or 1.1 ({why}), so whether the server "
            "accepts them is unknown",
            reason=why,
        )
    try:
        shake = _connect(target, context, timeout)
    except ssl.SSLError as exc:
        if _refused(exc):
            return []  # refused, as it should be
        why = exc.reason or type(exc).__name__
        return _undetermined(
            place,
            f"{target.site}: the TLS 1.0/1.1 handshake failed ({why}) without the server refusing them, "
            "so whether it accepts them is unknown",
            reason=why,
        )
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return []  # the server hung up at the hello: refused
    except OSError as exc:
        return _undetermined(place, f"{target.site}: the TLS 1.0/1.1 handshake failed ({_why(exc)})")
    return [
        finding(
            "PW-POST-106",
            f"{target.site}: accepts {shake.version or 'a protocol older than TLS 1.2'}",
            location=place,
            evidence={"protocol": shake.version},
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
    found = judge(certs[0], place=place, now=now, baseline=baseline, protocol=None)
    for cert in certs[1:]:
        label = f"the chain's certificate {subject_of(cert)}"
        found += judge_window(cert, place=place, now=now, baseline=baseline, label=label)
    if ca is not None:
        trust = str(ca)
        try:
            anchors = x509.load_pem_x509_certificates(ca.read_bytes())
        except (OSError, ValueError):
            return [
                *found,
                *_undetermined(place, f"{ca}: the CA file cannot be read as PEM certificates", ca=str(ca)),
            ]
    else:
        anchors, trust = system_anchors()
        if not anchors:
            return [
                *found,
                *_undetermined(
                    place,
                    f"{path}: this machine has no system trust store to check the chain against; give the "
                    "CA with --ca",
                ),
            ]
        trust = f"the system trust store ({trust})"
    walked = walk_chain(certs, anchors)
    reason = walked.reason
    if reason is None:
        anchor = walked.path[-1]
        if anchor not in certs and out_of_window(anchor, now):
            reason = (
                f"the trusted CA {subject_of(anchor)} is outside its validity window "
                f"({anchor.not_valid_before_utc:%Y-%m-%d} to {anchor.not_valid_after_utc:%Y-%m-%d})"
            )
    if reason is None:
        return found
    found.append(
        finding(
            "PW-POST-105",
            f"{path}: the chain does not verify against {trust}: {reason}",
            location=place,
            evidence={"trusted": trust, "reason": reason},
        )
    )
    return found
