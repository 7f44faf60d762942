"""Mutual TLS end to end: uvicorn on loopback with the server's TLS context and `TlsScopeProtocol`, as
`pipewarden serve --tls-client-ca` runs it, and clients presenting real certificates in real handshakes.

Three throwaway CAs (`trustme`): one issued the server's certificate, one is the client CA the server
trusts, one is a stranger. A certificate of the client CA registered to a service account gets in as
that account (with httpx, and with the command line's ``--client-cert``); one the client CA issued that
nobody registered is refused; one of the stranger CA fails the handshake; a browser-style login needs
no certificate at all.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from pipewarden.identity import ClientCertificates, Grant, certificate_fingerprint
from pipewarden.server import ServerSettings, create_app
from pipewarden.server._tls import TlsFiles, server_context
from tests.cli.clirun import run
from tests.integration.test_server_tls import HOST, serving
from tests.server.serverkit import ADMIN, PASSWORD, ServerKit, next_code

SERVICE = "svc-etl"
FRAUD = "project:fraud"


@dataclass(frozen=True, slots=True)
class Served:
    kit: ServerKit
    url: str
    server_ca: trustme.CA
    clients: trustme.CA
    stranger: trustme.CA
    folder: Path
    bound: trustme.LeafCert  # registered to SERVICE
    unbound: trustme.LeafCert  # issued by the client CA, registered to nobody

    def context(self, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        """A client that verifies the server, presenting `cert` (or nothing)."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if cert is not None:
            cert.configure_cert(context)
        return context

    def files(self, cert: trustme.LeafCert, name: str) -> tuple[Path, Path]:
        """`cert` and its key as PEM files, for the command line."""
        pem, key = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        pem.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        return pem, key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("mtls")
    kit = ServerKit(folder / "kit")
    kit.service(SERVICE, Grant("pipeline-service", FRAUD))
    kit.user("val", Grant("viewer", FRAUD))  # needs no MFA: a browser logs in with a password alone
    server_ca, clients, stranger = trustme.CA(), trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert(HOST)
    files = TlsFiles(folder / "server.pem", folder / "server.key")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    client_ca = folder / "clients-ca.pem"
    clients.cert_pem.write_to_path(str(client_ca))
    # Both certificates name the same service: only the registered one is it.
    bound = clients.issue_cert(f"{SERVICE}@pipelines.example")
    unbound = clients.issue_cert(f"{SERVICE}@pipelines.example")
    ClientCertificates(kit.ws.database(), policy=kit.auth.policy, events=kit.events).register(
        SERVICE, certificate_fingerprint(bound.cert_chain_pems[0].bytes()), by=kit.admin, origin="setup"
    )
    settings = ServerSettings(tls_cert=files.cert, tls_key=files.key, client_ca=client_ca)
    app = create_app(settings, workspace=kit.ws)
    with serving(app, server_context(files, client_ca=client_ca), files) as port:
        yield Served(kit, f"https://{HOST}:{port}", server_ca, clients, stranger, folder, bound, unbound)


def test_a_registered_certificate_gets_in_as_its_service_account(served: Served) -> None:
    with httpx.Client(base_url=served.url, verify=served.context(served.bound)) as client:
        me = client.get("/v1/whoami")
        assert me.status_code == 200, me.text
        assert (me.json()["name"], me.json()["kind"]) == (SERVICE, "service")
        stored = client.put("/v1/artifacts/fraud/data/batch.csv", content=b"a,b\n1,2\n")
        assert stored.status_code == 201, stored.text
        assert stored.json()["created_by"] == SERVICE
        # Its roles decide what it may do, as for any credential.
        assert client.get("/v1/alerts").status_code == 403
    recorded = [e for e in served.kit.events_since(0) if e.action == "artifact.write"]
    assert [(e.actor, e.outcome) for e in recorded][-1] == (SERVICE, "allowed")
    assert str(recorded[-1].attributes["token_id"]).startswith("cert:")


def test_a_certificate_of_the_client_ca_that_nobody_registered_is_refused(served: Served) -> None:
    start = served.kit.head()
    with httpx.Client(base_url=served.url, verify=served.context(served.unbound)) as client:
        refused = client.get("/v1/whoami")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [(e.action, e.actor, e.outcome) for e in served.kit.events_since(start)] == [
        ("certificate.use", "anonymous", "denied")
    ]


def test_a_certificate_of_another_ca_fails_the_handshake(served: Served) -> None:
    stranger = served.stranger.issue_cert(f"{SERVICE}@pipelines.example")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.url}/healthz", verify=served.context(stranger))


def test_no_certificate_and_no_token_is_refused(served: Served) -> None:
    start = served.kit.head()
    refused = httpx.get(f"{served.url}/v1/whoami", verify=served.context())
    assert refused.status_code == 401
    assert [(e.action, e.outcome, e.attributes["reason"]) for e in served.kit.events_since(start)] == [
        ("http.request", "denied", "no credential")
    ]


def test_a_browser_logs_in_without_a_certificate(served: Served) -> None:
    with httpx.Client(base_url=served.url, verify=served.context()) as browser:
        login = browser.post("/v1/session", json={"name": "val", "password": PASSWORD})
        assert login.status_code == 200 and login.json()["status"] == "signed_in", login.text
        assert "pw_session" in browser.cookies
        me = browser.get("/v1/whoami")
        assert me.status_code == 200 and me.json()["name"] == "val"


def test_the_command_line_presents_its_client_certificate(served: Served, tmp_path: Path) -> None:
    ca = served.folder / "server-ca.pem"
    served.server_ca.cert_pem.write_to_path(str(ca))
    cert, key = served.files(served.bound, "bound")
    base = ("--server", served.url, "--server-ca", str(ca))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home")}
    done = run(*base, "--client-cert", str(cert), "--client-key", str(key), "whoami", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{SERVICE} (service)")
    # The same options from the environment; a certificate nobody registered is refused (exit 1).
    other_cert, other_key = served.files(served.unbound, "unbound")
    env |= {"PIPEWARDEN_CLIENT_CERT": str(other_cert), "PIPEWARDEN_CLIENT_KEY": str(other_key)}
    refused = run(*base, "whoami", cwd=tmp_path, env=env)
    assert refused.returncode == 1 and "credentials" in refused.stderr


def test_an_administrator_registers_and_removes_a_certificate_from_the_command_line(
    served: Served, tmp_path: Path
) -> None:
    kit = served.kit
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home"), "PIPEWARDEN_WORKSPACE": str(kit.ws.root)}
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    login = run(
        "login",
        "--name",
        ADMIN,
        "--password-file",
        "pw.txt",
        "--totp-code",
        next_code(kit.admin_totp),
        cwd=tmp_path,
        env=env,
    )
    assert login.returncode == 0, login.stderr
    cert, _ = served.files(served.unbound, "unbound")
    fp = certificate_fingerprint(served.unbound.cert_chain_pems[0].bytes())
    added = run(
        "user",
        "certificate",
        "add",
        SERVICE,
        "--cert",
        str(cert),
        "-d",
        "second stage",
        cwd=tmp_path,
        env=env,
    )
    assert added.returncode == 0 and SERVICE in added.stdout, added.stderr
    listed = run("user", "certificate", "list", SERVICE, "--json", cwd=tmp_path, env=env)
    assert fp in {c["fingerprint"] for c in json.loads(listed.stdout)}
    with httpx.Client(base_url=served.url, verify=served.context(served.unbound)) as client:
        assert client.get("/v1/whoami").json()["name"] == SERVICE
        # Removed, it stops working on the very next request, on the same connection.
        removed = run("user", "certificate", "remove", SERVICE, fp.upper(), cwd=tmp_path, env=env)
        assert removed.returncode == 0, removed.stderr
        assert client.get("/v1/whoami").status_code == 401
    # An API token does not register credentials, an administrator's included (exit 1, refused).
    by_token = run(
        "user",
        "certificate",
        "add",
        SERVICE,
        "--fingerprint",
        fp,
        cwd=tmp_path,
        env={**env, "PIPEWARDEN_TOKEN": kit.token(ADMIN)},
    )
    assert by_token.returncode == 1 and "login session" in by_token.stderr
