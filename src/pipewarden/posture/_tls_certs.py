"""Judging certificates: validity windows (every certificate of a chain), keys, signatures, host names,
and chains checked offline against CA certificates (``--ca``, or the system's trust store)."""

from __future__ import annotations

import ipaddress
import re
import ssl
import warnings
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.utils import CryptographyDeprecationWarning

from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import PostureBaseline, finding

__all__ = [
    "MAX_CHAIN",
    "ChainProblem",
    "host_matches",
    "judge",
    "judge_window",
    "names",
    "out_of_window",
    "read_pem_certificates",
    "subject_of",
    "system_anchors",
    "walk_chain",
]

MAX_CHAIN = 10
_MIN_RSA_BITS = 2048
_MIN_EC_BITS = 256
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
#: How OpenSSL names the files of a hashed CA folder (c_rehash): eight hex digits, a dot, a number.
_HASHED = re.compile(r"^[0-9a-f]{8}\.\d+$")


def subject_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "a certificate without a subject"


def out_of_window(cert: x509.Certificate, when: datetime) -> bool:
    return when < cert.not_valid_before_utc or when >= cert.not_valid_after_utc


def judge_window(
    cert: x509.Certificate,
    *,
    place: Location,
    now: datetime,
    baseline: PostureBaseline,
    label: str = "",
    facts: dict[str, object] | None = None,
) -> list[Finding]:
    """PW-POST-102 when `cert` is outside its validity window at `now`, 103 when it ends soon. `label`
    names a certificate other than the server's own ("the intermediate CN=...")."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    facts = facts or {
        "subject": subject_of(cert),
        "not_before": start.isoformat(),
        "not_after": end.isoformat(),
    }
    if label:
        facts = {**facts, "certificate": label}
    what = f"{place.path}: {label} " if label else f"{place.path}: "
    if now < start:
        return [
            finding("PW-POST-102", f"{what}not valid before {start:%Y-%m-%d}", location=place, evidence=facts)
        ]
    if now >= end:
        days = (now - end).days
        return [
            finding(
                "PW-POST-102",
                f"{what}expired on {end:%Y-%m-%d} ({days} days ago)",
                location=place,
                evidence=facts,
            )
        ]
    if end - now <= baseline.cert_expiry_warning:
        days = (end - now).days
        return [
            finding(
                "PW-POST-103",
                f"{what}expires on {end:%Y-%m-%d}, in {days} days",
                location=place,
                evidence={**facts, "days_left": days},
            )
        ]
    return []


def judge(
    cert: x509.Certificate,
    *,
    place: Location,
    now: datetime,
    baseline: PostureBaseline,
    protocol: str | None,
) -> list[Finding]:
    """The server's own certificate: its dates (102, 103), key (107) and signature (108)."""
    facts: dict[str, object] = {
        "subject": subject_of(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
    if protocol:
        facts["protocol"] = protocol
    where = place.path
    found = judge_window(cert, place=place, now=now, baseline=baseline, facts=facts)
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


def names(cert: x509.Certificate) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
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


def host_matches(host: str, cert: x509.Certificate) -> bool:
    """RFC 6125 section 6.4: an address against the IP entries; a name against the DNS entries, exactly or
    by a wildcard standing for the whole left-most label of a name with at least three labels."""
    dns, ips = names(cert)
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


# --- chains, offline -----------------------------------------------------------------------------------


class ChainProblem:
    """Why a chain does not verify (`reason`), or None for `reason` when it does; `path` is the chain
    as far as it was built, the server's certificate first and the trusted CA last when one was reached."""

    __slots__ = ("path", "reason")

    def __init__(self, reason: str | None, path: list[x509.Certificate]) -> None:
        self.reason, self.path = reason, path


def _signature_problem(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None when `issuer` signed `cert`, else why not."""
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "the signature does not verify"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # A SHA-1 or MD5 signature, say, which current TLS libraries refuse in a chain as well.
        return f"the signature cannot be checked ({exc})"
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return cert.issuer == issuer.subject and _signature_problem(cert, issuer) is None


def _no_issuer(current: x509.Certificate, candidates: list[x509.Certificate]) -> str:
    named = next((c for c in candidates if c.subject == current.issuer), None)
    if named is None and current.issuer == current.subject:
        return f"{subject_of(current)} is self-signed and not trusted"
    if named is None:
        return f"nothing given or trusted issued {subject_of(current)}"
    return (
        f"{subject_of(current)} names {subject_of(named)} as its issuer, but "
        f"{_signature_problem(current, named) or 'the signature does not verify'}"
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def walk_chain(certs: list[x509.Certificate], anchors: list[x509.Certificate]) -> ChainProblem:
    """Build the chain from `certs[0]` through the others in `certs` to one of `anchors` (signatures
    checked; an intermediate must be a CA certificate). Dates are judged by the caller, on `path`."""
    current, pool = certs[0], list(certs[1:])
    path = [current]
    for _ in range(MAX_CHAIN):
        anchor = next((a for a in anchors if _issued_by(current, a)), None)
        if anchor is not None:
            if anchor is not current:
                path.append(anchor)
            return ChainProblem(None, path)
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            return ChainProblem(_no_issuer(current, [*anchors, *pool]), path)
        if not _is_ca(issuer):
            return ChainProblem(f"{subject_of(issuer)} signed {subject_of(current)} but is not a CA", path)
        pool.remove(issuer)
        path.append(issuer)
        current = issuer
    return ChainProblem(f"the chain is longer than {MAX_CHAIN} certificates", path)


def read_pem_certificates(data: bytes) -> tuple[list[x509.Certificate], int]:
    """Every PEM certificate in `data` that parses, and how many did not."""
    certs: list[x509.Certificate] = []
    broken = 0
    with warnings.catch_warnings():
        # Old roots in system stores break RFC 5280 in small ways (a serial that is not positive) that
        # the library warns about on every load; they are still what OpenSSL trusts.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in _PEM_BLOCK.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                broken += 1
    return certs, broken


def system_anchors() -> tuple[list[x509.Certificate], str]:
    """The CA certificates this machine's TLS library trusts by default, and where they were read: the
    CA file and the hashed CA folder OpenSSL would use (``$SSL_CERT_FILE``, ``$SSL_CERT_DIR`` honoured).
    An empty list when there is neither."""
    paths = ssl.get_default_verify_paths()
    files: list[Path] = []
    places: list[str] = []
    if paths.cafile:
        files.append(Path(paths.cafile))
        places.append(paths.cafile)
    if paths.capath:
        folder = Path(paths.capath)
        try:
            files.extend(sorted(p for p in folder.iterdir() if _HASHED.match(p.name)))
        except OSError:
            pass  # an unreadable folder adds nothing, as for OpenSSL
        places.append(paths.capath)
    anchors: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            continue
        for cert in read_pem_certificates(data)[0]:
            fingerprint = cert.fingerprint(hashes.SHA256())
            if fingerprint not in seen:
                seen.add(fingerprint)
                anchors.append(cert)
    return anchors, " and ".join(places) or "the system trust store"
