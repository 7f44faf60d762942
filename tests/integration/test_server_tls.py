"""The server over a real TLS socket: uvicorn on loopback with the server's own TLS context.

Certificates come from `trustme` (a throwaway CA issuing a certificate for 127.0.0.1 and localhost),
clients verify against that CA, and every handshake is a real one. The settings `pipewarden serve`
refuses, the self-signed certificate of ``--tls auto``, and the command itself, started as a process
and asked for its health over HTTPS, are tested here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from typer.testing import CliRunner

from pipewarden.cli import app as cli_app
from pipewarden.errors import ConfigError
from pipewarden.server import ServerSettings, create_app
from pipewarden.server._tls import TlsFiles, TlsScopeProtocol, auto_certificate, fingerprint, server_context
from pipewarden.workspace import Workspace

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Pki:
    ca: trustme.CA  # issued the server's certificate
    clients: trustme.CA  # the CA the server trusts for client certificates
    stranger: trustme.CA  # a CA the server knows nothing of
    files: TlsFiles
    client_ca: Path

    def client_context(self, *, issuer: trustme.CA | None = None) -> ssl.SSLContext:
        """A client that verifies the server against the CA, presenting a certificate from `issuer`."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if issuer is not None:
            issuer.issue_cert("pipeline-stage@fraud.example").configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, clients = trustme.CA(), trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    cert, key, client_ca = folder / "server.pem", folder / "server.key", folder / "clients-ca.pem"
    for blob in leaf.cert_chain_pems:
        with cert.open("ab") as out:
            out.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    clients.cert_pem.write_to_path(str(client_ca))
    return Pki(ca, clients, trustme.CA(), TlsFiles(cert, key), client_ca)


@contextmanager
def serving(app: object, context: ssl.SSLContext, files: TlsFiles) -> Iterator[int]:
    """uvicorn serving `app` with `context`, as `pipewarden serve` sets it up, on a free loopback port."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=HOST,
        port=port,
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        log_level="warning",
        http=TlsScopeProtocol,  # the client certificate, into each request's scope
    )
    config.load()
    config.ssl = context
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _workspace(root: Path) -> Workspace:
    return Workspace.init(root / "ws")


@pytest.fixture(scope="module")
def tls_port(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    ws = _workspace(tmp_path_factory.mktemp("tls"))
    settings = ServerSettings(tls_cert=pki.files.cert, tls_key=pki.files.key)
    with serving(create_app(settings, workspace=ws), server_context(pki.files), pki.files) as port:
        yield port


@pytest.fixture(scope="module")
def mtls_port(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    ws = _workspace(tmp_path_factory.mktemp("mtls"))
    settings = ServerSettings(tls_cert=pki.files.cert, tls_key=pki.files.key, client_ca=pki.client_ca)
    context = server_context(pki.files, client_ca=pki.client_ca)
    with serving(create_app(settings, workspace=ws), context, pki.files) as port:
        yield port


def _handshake(port: int, context: ssl.SSLContext) -> tuple[str, str]:
    """A bare handshake and one request: the protocol and cipher negotiated."""
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = tls.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        version, cipher = tls.version(), tls.cipher()
    assert version is not None and cipher is not None
    return version, cipher[0]


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the server refuses this client: the handshake fails, or (TLS 1.3, where the client's
    certificate is checked after the client's side of the handshake is done) the server closes the
    connection without answering the request."""
    try:
        with (
            socket.create_connection((HOST, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return tls.recv(4096) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def _tls11_client(pki: Pki) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pki.ca.configure_trust(context)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _client_can_speak_tls11(pki: Pki) -> bool:
    """Whether this machine's OpenSSL completes a TLS 1.1 handshake with a peer that allows it."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1_1
        server.maximum_version = ssl.TLSVersion.TLSv1_1
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.load_cert_chain(str(pki.files.cert), str(pki.files.key))
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            _tls11_client(pki).wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            return tls.version() == "TLSv1.1"
    except (OSError, ssl.SSLError):
        return False
    finally:
        thread.join(timeout=10)
        listener.close()


# --- the TLS socket ------------------------------------------------------------------------------------


def test_healthz_over_https_verified_against_the_ca(pki: Pki, tls_port: int) -> None:
    for host in (HOST, "localhost"):
        response = httpx.get(f"https://{host}:{tls_port}/healthz", verify=pki.client_context())
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert "max-age=" in response.headers["strict-transport-security"]
    untrusting = ssl.create_default_context()
    pki.stranger.configure_trust(untrusting)  # a client that trusts another CA refuses the server
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://{HOST}:{tls_port}/healthz", verify=untrusting)


def test_plain_http_to_the_tls_port_gets_no_answer(tls_port: int) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{HOST}:{tls_port}/healthz", timeout=10)


def test_tls_12_and_13_are_served_with_forward_secret_aead_ciphers(pki: Pki, tls_port: int) -> None:
    twelve = pki.client_context()
    twelve.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = _handshake(tls_port, twelve)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    thirteen = pki.client_context()
    thirteen.minimum_version = ssl.TLSVersion.TLSv1_3
    assert _handshake(tls_port, thirteen)[0] == "TLSv1.3"


def test_a_tls_11_client_is_refused(pki: Pki, tls_port: int) -> None:
    if not _client_can_speak_tls11(pki):
        pytest.skip("this machine's OpenSSL cannot complete TLS 1.1 even with a peer that allows it")
    # The same client completes TLS 1.1 with a permissive peer (checked above): the refusal is the server's.
    assert _refused(tls_port, _tls11_client(pki))


def test_mutual_tls_accepts_certificates_of_the_client_ca_only(pki: Pki, mtls_port: int) -> None:
    url = f"https://{HOST}:{mtls_port}/healthz"
    assert httpx.get(url, verify=pki.client_context(issuer=pki.clients)).status_code == 200
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = pki.client_context(issuer=pki.clients)
        context.minimum_version = context.maximum_version = version
        _handshake(mtls_port, context)
    # A certificate from a CA the server does not trust for clients is refused in the handshake.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = pki.client_context(issuer=pki.stranger)
        context.minimum_version = context.maximum_version = version
        assert _refused(mtls_port, context), version
    with pytest.raises(httpx.TransportError):
        httpx.get(url, verify=pki.client_context(issuer=pki.stranger))
    # Presenting one is optional: services without a client certificate authenticate with tokens.
    assert httpx.get(url, verify=pki.client_context()).status_code == 200


def test_server_context_names_a_file_it_cannot_load(pki: Pki, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"broken\.pem: cannot load the certificate"):
        server_context(TlsFiles(broken, pki.files.key))
    with pytest.raises(ConfigError, match=r"missing\.pem: cannot load the client CA"):
        server_context(pki.files, client_ca=tmp_path / "missing.pem")


# --- the settings `pipewarden serve` accepts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "TLS is required"),
        ({"insecure_http": True, "host": "0.0.0.0"}, "only on a loopback address, not 0.0.0.0"),  # noqa: S104
        ({"insecure_http": True, "host": "192.0.2.10"}, "only on a loopback address"),
        ({"tls_cert": Path("c.pem")}, "--tls-cert and --tls-key go together"),
        ({"tls_auto": True, "insecure_http": True}, "choose one of"),
        ({"tls_auto": True, "tls_cert": Path("c.pem"), "tls_key": Path("k.pem")}, "choose one of"),
        ({"insecure_http": True, "client_ca": Path("ca.pem")}, "needs TLS"),
        ({"tls_auto": True, "port": 0}, "not a TCP port"),
        ({"tls_auto": True, "max_upload_bytes": 0}, "must be positive"),
        ({"tls_auto": True, "rate_per_minute": -1}, "must be positive"),
    ],
)
def test_settings_that_would_be_unsafe_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerSettings(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_plain_http_is_allowed_on_loopback_only(host: str) -> None:
    settings = ServerSettings(insecure_http=True, host=host)
    assert settings.tls is False
    assert ServerSettings(tls_auto=True, host="0.0.0.0").tls is True  # noqa: S104  # TLS on every interface


def test_the_command_refuses_the_same_settings_with_exit_status_2(tmp_path: Path) -> None:
    env = {"PIPEWARDEN_WORKSPACE": str(tmp_path / "ws"), "PIPEWARDEN_DATABASE_URL": None}
    runner = CliRunner()
    cases = [
        (["serve", "--insecure-http", "--host", "0.0.0.0"], "only on a loopback address"),  # noqa: S104
        (["serve"], "TLS is required"),
        (["serve", "--tls", "manual"], "--tls manual: the only value is 'auto'"),
        (["serve", "--tls-key", "k.pem"], "go together"),
    ]
    for args, message in cases:
        result = runner.invoke(cli_app, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


# --- `--tls auto` -------------------------------------------------------------------------------------------


def _cert(files: TlsFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.cert.read_bytes())


def test_auto_certificate_is_made_once_with_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    folder = tmp_path / "ws" / "tls"
    files = auto_certificate(folder, hosts=["pw.internal"])
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    key = load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    cert = _cert(files)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"pw.internal", "localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    life = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364) < life <= dt.timedelta(days=365)
    before = (files.cert.read_bytes(), files.key.read_bytes())
    again = auto_certificate(folder, hosts=["pw.internal"])
    assert (again.cert.read_bytes(), again.key.read_bytes()) == before  # valid: kept, not remade
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_auto_certificate_is_renewed_within_a_week_of_expiry_or_for_a_new_host(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    short = auto_certificate(folder, hosts=["127.0.0.1"], days=6)
    first = short.cert.read_bytes()
    renewed = auto_certificate(folder, hosts=["127.0.0.1"])
    assert renewed.cert.read_bytes() != first
    assert _cert(renewed).not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert renewed.key.stat().st_mode & 0o777 == 0o600
    kept = auto_certificate(folder, hosts=["127.0.0.1"], days=30)
    assert kept.cert.read_bytes() == renewed.cert.read_bytes()
    moved = auto_certificate(folder, hosts=["pw.internal"])
    san = _cert(moved).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pw.internal" in san.get_values_for_type(x509.DNSName)


def test_fingerprint_is_the_sha256_of_the_der_certificate(tmp_path: Path) -> None:
    files = auto_certificate(tmp_path / "tls", hosts=["localhost"])
    der = ssl.PEM_cert_to_DER_cert(files.cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    assert fingerprint(files.cert.read_bytes()).replace(":", "") == digest
    assert len(fingerprint(files.cert.read_bytes()).split(":")) == 32


# --- the command -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def test_pipewarden_serve_with_tls_auto_answers_over_https(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PIPEWARDEN_DATABASE_URL"}
    env["PIPEWARDEN_WORKSPACE"] = str(ws.root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipewarden.cli", "serve", "--tls", "auto", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    cert = ws.root / "tls" / "server.pem"
    response = None
    try:
        deadline = time.monotonic() + 30
        while response is None:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "pipewarden serve did not answer"
            if cert.exists():
                context = ssl.create_default_context(cafile=str(cert))
                try:
                    response = httpx.get(f"https://{HOST}:{port}/healthz", verify=context, timeout=5)
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert (ws.root / "tls" / "server.key").stat().st_mode & 0o777 == 0o600
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{HOST}:{port}/healthz", timeout=5)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    text = err.decode()
    assert fingerprint(cert.read_bytes()) in text
    assert f"serving https://{HOST}:{port}/" in text
