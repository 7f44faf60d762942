"""A server over a real workspace, built the way an operator builds one, for the server tests to call.

Everything is real: the workspace (`Workspace.init`) with its database, key ring, store and audit log;
accounts made with `Accounts`; an administrator who enrolled a TOTP authenticator; service accounts
holding each built-in role with API tokens an administrator made for them (`Authenticator.create_token`);
alerts opened by the monitor's own rules; and `create_app` served by FastAPI's `TestClient`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipewarden.events import Actor, Event
from pipewarden.identity import (
    ADMIN_ROLE,
    Accounts,
    Authenticator,
    Grant,
    PasswordPolicy,
    Policy,
    Subject,
    Totp,
)
from pipewarden.monitor import AlertBook, Monitor, builtin_rules
from pipewarden.server import ServerSettings, create_app
from pipewarden.store import Artifact
from pipewarden.workspace import Workspace

__all__ = [
    "ADMIN",
    "ORIGIN",
    "PASSWORD",
    "SECURITY_HEADERS",
    "ServerKit",
    "assert_problem",
    "bearer",
    "next_code",
]

PASSWORD = "tangerine orbit velvet quarry"  # noqa: S105  # accounts on a throwaway database
ADMIN = "boss"
ORIGIN = "10.0.0.1"
ROOT = Actor("root", "system", "test")

#: Headers every response carries, errors included (a plain HTTP server sends no HSTS).
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

#: What a problem document must never show a client: the server's own files, a stack trace.
_LEAKS = ("/work", "site-packages", "Traceback", 'File "')


def assert_problem(response: Any, status: int, kind: str, *, private: tuple[str, ...] = ()) -> dict[str, Any]:
    """`response` is an RFC 9457 problem document of `status` and type `kind`, and shows nothing of the
    server's internals (nor any of the `private` strings, such as the workspace's folder)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:pipewarden:problem:{kind}", body
    assert body["status"] == status and body["title"] and body["detail"], body
    assert body["instance"] == response.request.url.path, body
    text = response.text
    for leak in (*_LEAKS, *private):
        assert leak not in text, (leak, text)
    return body


class ServerKit:
    """One workspace with an enrolled administrator, and the app over it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = Workspace.init(root / "ws")
        self.events = self.ws.events()
        # OWASP's cheapest allowed argon2id parameters, for speed; the server's own authenticator
        # verifies these hashes as they are (and rehashes at its stronger parameters on login).
        self.passwords = PasswordPolicy(memory_kib=19456, iterations=2)
        self.accounts = Accounts(self.ws.database(), events=self.events, passwords=self.passwords)
        self.auth = Authenticator(
            self.ws.database(),
            events=self.events,
            keyring=self.ws.keyring(),
            policy=Policy.for_workspace(self.ws.root),
            passwords=self.passwords,
        )
        self.accounts.create_user(ADMIN, password=PASSWORD, actor=ROOT, grants=[Grant(ADMIN_ROLE)])
        self.admin_totp, self.admin_codes, self.admin = self.enrol(ADMIN)

    # --- the app ------------------------------------------------------------------------------------

    def app(self, **settings: Any) -> FastAPI:
        """`create_app` over this workspace: plain HTTP on loopback unless `settings` say otherwise."""
        if not {"tls_auto", "tls_cert"} & settings.keys():
            settings.setdefault("insecure_http", True)
        return create_app(ServerSettings(**settings), workspace=self.ws)

    def client(self, **settings: Any) -> TestClient:
        return TestClient(self.app(**settings), raise_server_exceptions=False)

    # --- principals ---------------------------------------------------------------------------------

    def user(self, name: str, *grants: Grant) -> str:
        self.accounts.create_user(name, password=PASSWORD, actor=ROOT, grants=list(grants))
        return name

    def enrol(self, name: str) -> tuple[Totp, tuple[str, ...], Subject]:
        """Enrol `name`'s TOTP authenticator (a login with MFA): the TOTP, recovery codes and the subject."""
        enrolment = self.auth.begin_mfa_enrolment(name, password=PASSWORD, origin=ORIGIN)
        code = enrolment.totp.code_at(datetime.now(UTC).timestamp())
        done = self.auth.confirm_mfa_enrolment(name, code, password=PASSWORD, origin=ORIGIN)
        assert done.login.session is not None
        return enrolment.totp, done.recovery_codes.codes, done.login.subject

    def service(self, name: str, *grants: Grant) -> str:
        self.accounts.create_service(name, actor=ROOT, grants=list(grants))
        return name

    def token(self, owner: str, *, scopes: tuple[str, ...] = ("*",)) -> str:
        """An API token for `owner`, made by the administrator's MFA session."""
        made = self.auth.create_token(
            owner, by=self.admin, scopes=list(scopes), lifetime=timedelta(days=1), origin=ORIGIN
        )
        return made.plaintext

    def token_id(self, owner: str) -> str:
        made = self.auth.create_token(
            owner, by=self.admin, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN
        )
        return made.info.token_id

    # --- the store, the monitor, the log ------------------------------------------------------------

    def put(self, name: str, data: bytes, *, suffix: str = ".json") -> Artifact:
        """Store `data` as `name` as the local operator would (`pipewarden store put`)."""
        path = self.root / f"put{suffix}"
        path.write_bytes(data)
        try:
            return self.ws.store().put(path, name=name, actor=ROOT.name)
        finally:
            path.unlink()

    def alert(self, user: str = "ada") -> int:
        """An alert the monitor's built-in rules open: a burst of failed logins against `user`."""
        book = AlertBook(self.ws.database())
        monitor = Monitor(builtin_rules(), book=book)
        start = datetime.now(UTC)
        for i in range(12):
            monitor.observe(
                Event(
                    action="auth.login",
                    actor=f"unknown:{user}",
                    actor_kind="anonymous",
                    resource=f"user:{user}",
                    outcome="denied",
                    origin="198.51.100.7",
                    attributes={"reason": "credentials"},
                    time=start + timedelta(seconds=i),
                )
            )
        found = [a for a in book.alerts() if a.labels.get("resource") == f"user:{user}"]
        assert found, "the monitor opened no alert"
        return found[0].id

    def login(self, client: TestClient, name: str, **factor: str) -> Any:
        """POST /v1/session with `name`'s password and `factor` (``totp_code`` or ``recovery_code``)."""
        return client.post("/v1/session", json={"name": name, "password": PASSWORD, **factor})

    def head(self) -> int:
        entries = self.ws.audit_log().tail(1)
        return entries[-1].seq if entries else 0

    def events_since(self, seq: int) -> list[Event]:
        return [entry.event for entry in self.ws.audit_log().records(seq + 1)]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def next_code(totp: Totp) -> str:
    """A code of the next 30-second step: inside the server's window, and newer than any used yet."""
    return totp.code_at(time.time() + totp.period)
