"""A deployment built the way an operator builds one, well configured, for posture to judge.

Everything is real: the workspace (`Workspace.init`), its database and audit log, accounts made with
`Accounts`, MFA enrolled through `Authenticator` with TOTP codes, tokens made by an administrator's
session and used, a monitor.yaml whose webhook is a socket listening on loopback, an OSV database
folder, a server certificate. The identity clock is the only stand-in: accounts and tokens are made
and used "days ago" by moving it, and posture is asked at `now`.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipewarden.events import Acting, Actor, Event, LocalOperator
from pipewarden.findings import Report
from pipewarden.identity import Accounts, Authenticator, Grant, NewToken, PasswordPolicy, Policy, Subject
from pipewarden.posture import PostureBaseline, check_posture
from pipewarden.workspace import Workspace
from tests.posture.tlskit import make_ca, make_leaf

__all__ = ["DAY", "HOOK_SECRET_ENV", "ORIGIN", "PASSWORD", "Clock", "Deployment", "closed_port", "rules"]

DAY = timedelta(days=1)
PASSWORD = "tangerine orbit velvet quarry"  # noqa: S105  # test accounts on a throwaway database
HOOK_SECRET_ENV = "PW_POSTURE_TEST_HOOK_SECRET"  # noqa: S105  # the name of a variable
ROOT = Actor("root", "system", "test")
ORIGIN = "10.0.0.1"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rules(report: Report) -> dict[str, str]:
    """Rule id -> severity of every finding but the summary."""
    return {f.rule_id: f.severity.label for f in report.findings if f.rule_id != "PW-POST-200"}


class Deployment:
    """One workspace with an enrolled administrator, a service account whose token is in use, alerts
    routed to a (listening) webhook, a verified audit log, a fresh OSV database and a valid certificate."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, *, verified: bool = True) -> None:
        monkeypatch.delenv("PIPEWARDEN_DATABASE_URL", raising=False)
        monkeypatch.delenv("PGSSLMODE", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        monkeypatch.setenv(HOOK_SECRET_ENV, "posture-test-signing-secret-not-real")
        self.root = root
        self.now = datetime.now(UTC)
        self.clock = Clock(self.now - 20 * DAY)
        #: The login session each enrolment opened, by user: what `pipewarden login` would have stored.
        self.sessions: dict[str, str] = {}
        self.ws = Workspace.init(root / "ws")
        self.events = self.ws.events()
        passwords = PasswordPolicy(memory_kib=19456, iterations=2)
        self.accounts = Accounts(
            self.ws.database(), events=self.events, passwords=passwords, clock=self.clock
        )
        self.auth = Authenticator(
            self.ws.database(),
            events=self.events,
            keyring=self.ws.keyring(),
            policy=Policy.for_workspace(self.ws.root),
            passwords=passwords,
            clock=self.clock,
        )
        self.hook = socket.socket()
        self.hook.bind(("127.0.0.1", 0))
        self.hook.listen(8)
        self.write_monitor(f"http://127.0.0.1:{self.hook.getsockname()[1]}/alerts")
        self.admin = self.enrol(self.user("ada", "admin", days_ago=30), days_ago=2)
        self.service("ci-bot", "pipeline-service", days_ago=30)
        self.ci_token = self.token("ci-bot", days_ago=10)
        self.use(self.ci_token, days_ago=1)
        self.osv_db = self.write_osv(days_ago=1)
        ca = make_ca()
        self.ca_file = ca.write(root / "ca.pem")
        self.tls_cert, _ = make_leaf(ca, dns=("pw.internal",), ips=()).write(root)
        if verified:
            self.verify_audit()

    def close(self) -> None:
        self.hook.close()

    # --- accounts ----------------------------------------------------------------------------------

    def at(self, days_ago: float) -> datetime:
        self.clock.now = self.now - timedelta(days=days_ago)
        return self.clock.now

    def user(self, name: str, *roles: str, days_ago: float) -> str:
        self.at(days_ago)
        self.accounts.create_user(name, password=PASSWORD, actor=ROOT, grants=[Grant(r) for r in roles])
        return name

    def service(self, name: str, *roles: str, days_ago: float) -> str:
        self.at(days_ago)
        self.accounts.create_service(name, actor=ROOT, grants=[Grant(r) for r in roles])
        return name

    def enrol(self, name: str, *, days_ago: float) -> Subject:
        """Enrol a TOTP authenticator (which is a login, with MFA) and return the session's subject."""
        self.at(days_ago)
        enrolment = self.auth.begin_mfa_enrolment(name, password=PASSWORD, origin=ORIGIN)
        code = enrolment.totp.code_at(self.clock.now.timestamp())
        done = self.auth.confirm_mfa_enrolment(name, code, password=PASSWORD, origin=ORIGIN)
        assert done.login.session is not None
        self.sessions[name] = done.login.session.token
        return done.login.subject

    def login(self, name: str, *, days_ago: float) -> None:
        self.at(days_ago)
        result = self.auth.login(name, PASSWORD, origin=ORIGIN)
        assert result.session is not None, result.status

    def token(self, owner: str, *, days_ago: float, lifetime: timedelta = 90 * DAY) -> NewToken:
        self.at(days_ago)
        return self.auth.create_token(
            owner, by=self.admin, scopes=["artifact.read"], lifetime=lifetime, origin=ORIGIN
        )

    def use(self, token: NewToken, *, days_ago: float) -> None:
        self.at(days_ago)
        self.auth.authenticate_token(token.plaintext, origin=ORIGIN)

    # --- audit, monitor, dependency database -----------------------------------------------------------

    def verify_audit(self) -> None:
        """`pipewarden audit verify` as the local operator runs it: the real verification, one event."""
        log = self.ws.audit_log()
        doing = Acting(
            actor=Actor("operator", "system", "cli:test"), events=self.events, authorizer=LocalOperator()
        )
        result = doing.perform(
            "audit.verify", "audit:log", log.verify, describe=lambda r: {"records": r.records}
        )
        assert result.ok

    def record_verify(self, outcome: str, *, days_ago: float, **attributes: str) -> None:
        """An `audit verify` event as one run `days_ago` would have left it."""
        self.events.emit(
            Event(
                action="audit.verify",
                actor="operator",
                actor_kind="system",
                resource="audit:log",
                outcome=outcome,
                origin="cli:test",
                attributes=attributes,
                time=self.now - timedelta(days=days_ago),
            )
        )

    def write_monitor(self, webhook_url: str, *, extra: str = "", routes: str = "") -> None:
        (self.ws.root / "monitor.yaml").write_text(
            "sinks:\n"
            "  - {name: console, type: console}\n"
            f"  - {{name: hook, type: webhook, url: '{webhook_url}', secret_env: {HOOK_SECRET_ENV}}}\n"
            + extra
            + "routes:\n"
            + (
                routes
                or "  - {min_severity: high, sinks: [hook]}\n  - {min_severity: medium, sinks: [console]}\n"
            )
        )
        (self.ws.root / "monitor.yaml").chmod(0o600)

    def write_osv(self, *, days_ago: float) -> Path:
        folder = self.root / f"osv-{days_ago}"
        folder.mkdir()
        modified = (self.now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {
            "schema_version": "1.6.0",
            "id": "PWTEST-POSTURE-1",
            "modified": modified,
            "summary": "synthetic advisory for the posture tests",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "posture-test-package"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
                }
            ],
        }
        (folder / "PWTEST-POSTURE-1.json").write_text(json.dumps(doc))
        return folder

    # --- posture ------------------------------------------------------------------------------------

    def posture(
        self, *, probe: bool = True, baseline: PostureBaseline | None = None, **options: object
    ) -> Report:
        kwargs: dict[str, object] = {
            "tls_cert": self.tls_cert,
            "ca": self.ca_file,
            "osv_db": self.osv_db,
            **options,
        }
        if kwargs["tls_cert"] is None and kwargs.get("url") is None:
            kwargs["ca"] = None  # --ca needs something to check
        return check_posture(
            self.ws,
            now=self.now,
            probe_sinks=probe,
            baseline=baseline,
            **kwargs,  # type: ignore[arg-type]
        )
