"""`pipewarden --server URL ...`: the command line against a real server over TLS, as a person uses it.

A real uvicorn serves a real workspace with a certificate from a test CA; the CLI runs as a child
process that trusts that CA (`--server-ca`), logs in with a password and a TOTP code, and then stores,
fetches, lists, traces and verifies artifacts, reads and verifies the audit log, and acknowledges an
alert, all through the API.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from pipewarden.server import ServerSettings, create_app
from pipewarden.server._tls import TlsFiles, server_context
from tests.cli.clirun import run
from tests.integration.test_server_tls import HOST, serving
from tests.server.serverkit import ADMIN, PASSWORD, ServerKit


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerKit, str, Path]]:
    kit = ServerKit(tmp_path / "kit")
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST)
    files = TlsFiles(tmp_path / "server.pem", tmp_path / "server.key")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    app = create_app(ServerSettings(tls_cert=files.cert, tls_key=files.key), workspace=kit.ws)
    with serving(app, server_context(files), files) as port:
        yield kit, f"https://{HOST}:{port}", ca_file


def test_the_cli_logs_in_and_works_against_a_server(
    served: tuple[ServerKit, str, Path], tmp_path: Path
) -> None:
    kit, url, ca = served
    home = tmp_path / "home"
    env = {"XDG_CONFIG_HOME": str(home), "PIPEWARDEN_SERVER": url, "PIPEWARDEN_SERVER_CA": str(ca)}
    work = tmp_path / "work"
    work.mkdir()
    (work / "pw.txt").write_text(PASSWORD + "\n")

    def cli(*args: str) -> tuple[int, str]:
        done = run(*args, cwd=work, env=env)
        return done.returncode, done.stdout + done.stderr

    # Not logged in yet: every call is refused (exit 1, the same as a denied local command).
    code, out = cli("store", "ls")
    assert code == 1 and "credentials" in out
    code, out = cli("login", "--name", ADMIN, "--password-file", "pw.txt", "--totp-code", _next_code(kit))
    assert code == 0, out
    session = next((home / "pipewarden" / "servers").iterdir())
    assert oct(session.stat().st_mode & 0o777) == "0o600"
    code, out = cli("whoami")
    assert code == 0 and out.startswith(f"{ADMIN} (user)"), out

    data = os.urandom(4096)
    (work / "train.csv").write_text("a,b\n1,2\n3,4\n")
    (work / "weights.json").write_bytes(b'{"w": "' + data.hex().encode() + b'"}')
    code, out = cli("store", "put", "train.csv", "--name", "fraud/train")
    assert code == 0 and "stored fraud/train@1" in out, out
    code, out = cli("store", "put", "weights.json", "--name", "fraud/model", "--parent", "fraud/train@1")
    assert code == 0 and "stored fraud/model@1" in out, out
    code, out = cli("store", "get", "fraud/model", "-o", "back.json")
    assert code == 0, out
    assert (
        hashlib.sha256((work / "back.json").read_bytes()).digest()
        == hashlib.sha256((work / "weights.json").read_bytes()).digest()
    )
    code, out = cli("store", "ls")
    assert code == 0 and "fraud/model@1" in out and "fraud/train@1" in out
    code, out = cli("store", "lineage", "fraud/model@1")
    assert code == 0 and out.splitlines()[1].strip().startswith("fraud/train@1"), out
    code, out = cli("store", "verify", "fraud/model")
    assert code == 0 and "0 failed" in out

    alert = kit.alert()
    code, out = cli("alerts", "list")
    assert code == 0 and f"{alert:>5}" in out
    code, out = cli("alerts", "ack", str(alert))
    assert code == 0 and "acknowledged" in out
    code, out = cli("audit", "verify")
    assert code == 0, out
    code, out = cli("audit", "tail", "-n", "5")
    assert code == 0 and "artifact" in out

    # A malicious model is refused by the server's scan; exit 1, as locally.
    from tests.scan._asm import system_call

    (work / "evil.pkl").write_bytes(system_call("remote"))
    code, out = cli("store", "put", "evil.pkl", "--name", "fraud/evil")
    assert code == 1 and "scan" in out.lower()

    code, out = cli("logout")
    assert code == 0 and not session.exists()
    code, out = cli("store", "ls")
    assert code == 1


def test_the_cli_refuses_a_server_it_cannot_verify(
    served: tuple[ServerKit, str, Path], tmp_path: Path
) -> None:
    _, url, _ = served
    done = run("store", "ls", cwd=tmp_path, env={"PIPEWARDEN_SERVER": url, "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 2 and "certificate" in done.stderr.lower()
    done = run("--server", "http://pw.example:8080", "store", "ls", cwd=tmp_path)
    assert done.returncode == 2 and "loopback" in done.stderr


def _next_code(kit: ServerKit) -> str:
    from tests.server.serverkit import next_code

    return next_code(kit.admin_totp)
