"""Certificates made for the tests (a private CA, intermediates, and server certificates they sign) and a
real TLS server on loopback that completes handshakes in a thread."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Ca", "Leaf", "make_ca", "make_intermediate", "make_leaf", "sha1_signed", "tls_server"]

DAY = timedelta(days=1)


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


@dataclass
class Leaf:
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate

    def write(self, folder: Path, name: str = "server", *, chain: Sequence[Ca] = ()) -> tuple[Path, Path]:
        """The certificate (followed by the `chain` certificates, as a server sends them) and its key."""
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        pem = [c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *(i.cert for i in chain))]
        cert_path.write_bytes(b"".join(pem))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(
    common_name: str = "pipewarden test CA",
    *,
    issuer: Ca | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Ca:
    """A CA certificate: a self-signed root, or an intermediate signed by `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    return Ca(key, builder.sign(issuer.key if issuer else key, hashes.SHA256()))


def make_intermediate(
    issuer: Ca, *, not_before: datetime | None = None, not_after: datetime | None = None
) -> Ca:
    """An intermediate CA under `issuer`, as public CAs issue server certificates from."""
    return make_ca("pipewarden test intermediate", issuer=issuer, not_before=not_before, not_after=not_after)


def make_leaf(
    ca: Ca | None,
    *,
    dns: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    forged_by: CertificateIssuerPrivateKeyTypes | None = None,
) -> Leaf:
    """A server certificate for `dns` and `ips`, signed by `ca` (self-signed when `ca` is None), or
    naming `ca` as its issuer in every field but signed by `forged_by` (a forgery)."""
    now = datetime.now(UTC)
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = _name(dns[0] if dns else "server")
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    signer: CertificateIssuerPrivateKeyTypes = forged_by or (ca.key if ca else key)
    return Leaf(key, builder.sign(signer, hashes.SHA256()))


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def sha1_signed() -> x509.Certificate:
    """A self-signed certificate signed with SHA-1 (sha1WithRSAEncryption), as old CAs issued them.

    The library refuses to sign certificates with SHA-1, so the certificate is built with SHA-256 and
    re-signed: the two algorithm identifiers (1.2.840.113549.1.1.11 -> .5, same length) are swapped in
    the to-be-signed bytes and the outer structure, and the new TBS is signed with PKCS#1 v1.5 over SHA-1.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("old.example"))
        .issuer_name(_name("old.example"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 365 * DAY)
        .sign(key, hashes.SHA256())
    )
    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    sha1_rsa = bytes.fromhex("06092a864886f70d010105")
    tbs = cert.tbs_certificate_bytes.replace(sha256_rsa, sha1_rsa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303  # the point of the fixture
    algorithm = _der(0x30, sha1_rsa + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


@contextmanager
def tls_server(
    cert: Path,
    key: Path,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> Iterator[int]:
    """A TLS server on 127.0.0.1 (yielding its port) that completes each handshake and hangs up.

    By default it speaks TLS 1.2 and 1.3 only. A `minimum` below TLS 1.2 (RFC 8996 deprecated 1.0 and
    1.1) also lowers OpenSSL's security level to 0, the one that still allows them.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum
    if minimum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass  # a client that refused the handshake: what several checks do on purpose
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
