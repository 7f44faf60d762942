"""The server under load: 32 pipeline stages at once against a real uvicorn over TLS, for 12 seconds.

Each client is a thread with its own keep-alive HTTPS connection (verified against a throwaway CA from
`trustme`) and its own API token of a pipeline service account, as 32 stages of a pipeline would hold.
Each one, in a loop until the time is up: uploads pseudo-random bytes (1 byte to just over 1 MiB, so
some bodies span two of the store's encryption chunks) under its own name or under one name all of
them share (so versions of one name are claimed concurrently); downloads an upload chosen at random
from everyone's; reads a version's metadata; now and then lists the store and verifies its own name.
The workspace is the default one: a SQLite database and a local folder.

Afterwards: every answer was 2xx; every download had the SHA-256 of what was uploaded; the store holds
exactly the uploads (none lost, none extra), each downloaded once more and checked; the versions of the
shared name are 1..n with no gap or duplicate; the audit log verifies, and holds exactly one allowed
``artifact.write`` event per upload and no error.

Predictions are not part of the mix: serving a model needs a fitted guard and data in its lineage,
which the model routes' own tests set up; this test is about the store and the log under concurrency.
"""

from __future__ import annotations

import hashlib
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn

from pipewarden.identity import Grant
from pipewarden.server import ServerSettings, create_app
from pipewarden.server._tls import TlsFiles, server_context
from tests.server.serverkit import ServerKit

HOST = "127.0.0.1"
CLIENTS = 32
SECONDS = 12.0
SHARED = "fraud/load/shared.raw"
#: Body sizes: mostly small, some at and just past the store's 1 MiB encryption chunk.
SIZES = (1, 100, 4096, 65_536, 200_000, 1024 * 1024, 1024 * 1024 + 17)
WEIGHTS = (2, 4, 6, 6, 3, 1, 1)


@dataclass
class Ledger:
    """What the clients did, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    uploads: dict[str, str] = field(default_factory=dict)  # ref -> sha256 of the bytes sent
    errors: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    most_in_flight: int = 0

    def stored(self, ref: str, digest: str) -> None:
        with self.lock:
            if ref in self.uploads:
                self.errors.append(f"{ref}: answered to two uploads")
            self.uploads[ref] = digest

    def pick(self, rng: random.Random) -> tuple[str, str] | None:
        with self.lock:
            if not self.uploads:
                return None
            ref = rng.choice(list(self.uploads))
            return ref, self.uploads[ref]

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def begin(self, op: str) -> None:
        with self.lock:
            self.calls[op] += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def end(self) -> None:
        with self.lock:
            self.in_flight -= 1


@contextmanager
def serving(kit: ServerKit, folder: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """uvicorn over TLS on a free loopback port, in a thread; yields the port and a client context."""
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    cert, key = folder / "server.pem", folder / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    files = TlsFiles(cert, key)
    # 32 stages on one host share an address: the per-address rate limit (600 a minute by default) would
    # answer most of this load with 429. It has its own tests; here it is set out of the way.
    settings = ServerSettings(tls_cert=cert, tls_key=key, rate_per_minute=10_000_000)
    app = create_app(settings, workspace=kit.ws)
    sock = socket.socket()
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, host=HOST, port=port, ssl_certfile=str(cert), ssl_keyfile=str(key), log_level="warning"
    )
    config.load()
    config.ssl = server_context(files)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        yield port, client_context
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _content(ref: str) -> str:
    name, _, version = ref.rpartition("@")
    return f"/v1/artifacts/{name}/versions/{version}/content"


def _stage(number: int, http: httpx.Client, ledger: Ledger, until: float) -> None:
    """One pipeline stage's loop: upload, download and check, read metadata, sometimes list and verify."""
    # Deterministic per client; the interleaving is the machine's.
    rng = random.Random(number)  # noqa: S311  # test data, not a secret
    own = f"fraud/load/stage-{number:02d}.raw"
    step = 0

    def call(op: str, method: str, url: str, **kwargs: object) -> httpx.Response | None:
        ledger.begin(op)
        try:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            ledger.failed(f"stage {number} {method} {url}: {type(exc).__name__}: {exc}")
            return None
        finally:
            ledger.end()
        if not response.is_success:
            ledger.failed(f"stage {number} {method} {url}: {response.status_code} {response.text[:300]}")
            return None
        return response

    while time.monotonic() < until:
        step += 1
        name = SHARED if step % 3 == 0 else own
        data = rng.randbytes(rng.choices(SIZES, WEIGHTS)[0])
        up = call("upload", "PUT", f"/v1/artifacts/{name}", content=data)
        if up is not None:
            body = up.json()
            if body["sha256"] != hashlib.sha256(data).hexdigest() or body["size"] != len(data):
                ledger.failed(f"stage {number}: {body['ref']} stored as {body['sha256']} ({body['size']} B)")
            ledger.stored(body["ref"], hashlib.sha256(data).hexdigest())
        picked = ledger.pick(rng)
        if picked is not None:
            ref, digest = picked
            down = call("download", "GET", _content(ref))
            if down is not None:
                got = hashlib.sha256(down.content).hexdigest()
                if got != digest or down.headers.get("x-pipewarden-sha256") != digest:
                    ledger.failed(f"stage {number}: {ref} downloaded as {got}, uploaded as {digest}")
            meta = call("metadata", "GET", _content(ref).removesuffix("/content"))
            if meta is not None and meta.json()["sha256"] != digest:
                ledger.failed(f"stage {number}: {ref} metadata says {meta.json()['sha256']}")
        if step % 8 == 0:
            call("list", "GET", "/v1/artifacts")
        if step % 5 == 0:
            verdict = call("verify", "POST", f"/v1/artifacts/{own}/verify")
            if verdict is not None and not verdict.json()["ok"]:
                ledger.failed(f"stage {number}: {own} failed verification: {verdict.json()['failures']}")


@pytest.mark.slow
def test_32_stages_upload_download_and_verify_at_once_losing_nothing(tmp_path: Path) -> None:
    kit = ServerKit(tmp_path)
    kit.service("stages", Grant("pipeline-service", "project:fraud"))
    tokens = [kit.token("stages") for _ in range(CLIENTS)]
    start = kit.head()
    ledger = Ledger()
    with serving(kit, tmp_path) as (port, context):
        clients = [
            httpx.Client(
                base_url=f"https://{HOST}:{port}",
                verify=context,
                headers={"authorization": f"Bearer {token}"},
                timeout=120,
            )
            for token in tokens
        ]
        until = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=_stage, args=(i, http, ledger, until), daemon=True)
            for i, http in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 180)
        assert not any(t.is_alive() for t in threads), "a client did not finish"
        assert not ledger.errors, f"{len(ledger.errors)} failed calls:\n" + "\n".join(ledger.errors[:20])
        # Every upload, downloaded once more now that the writing is over, by the 32 clients in turn.
        refs = sorted(ledger.uploads)
        for i, ref in enumerate(refs):
            again = clients[i % CLIENTS].get(_content(ref))
            assert again.status_code == 200, (ref, again.status_code, again.text[:300])
            assert hashlib.sha256(again.content).hexdigest() == ledger.uploads[ref], ref
        for http in clients:
            http.close()
    print(f"{dict(ledger.calls)} in {SECONDS:.0f} s by {CLIENTS} clients, {ledger.most_in_flight} at once")
    assert ledger.calls["upload"] >= CLIENTS and len(ledger.uploads) == ledger.calls["upload"]
    assert ledger.most_in_flight >= CLIENTS // 2  # the calls did overlap: this was concurrent load
    # The store holds exactly what was uploaded: nothing lost, nothing extra.
    stored = {a.ref: a.digest for a in kit.ws.store().artifacts()}
    assert stored == ledger.uploads
    shared = sorted(int(ref.rpartition("@")[2]) for ref in ledger.uploads if ref.startswith(SHARED + "@"))
    assert shared == list(range(1, len(shared) + 1)) and len(shared) >= CLIENTS
    # The audit log is whole, and it recorded every write once.
    assert kit.ws.audit_log().verify().problem is None
    events = kit.events_since(start)
    writes = Counter(e.outcome for e in events if e.action == "artifact.write")
    assert writes == Counter({"allowed": len(ledger.uploads)})
    assert not [e for e in events if e.outcome != "allowed"], Counter((e.action, e.outcome) for e in events)
