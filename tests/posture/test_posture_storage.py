"""The database connection and the S3 endpoint, judged from their settings (nothing is connected to), and
the whole posture over a real PostgreSQL server: its audit-verify lookup and a URL never shown whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipewarden.events import Acting, Actor, LocalOperator
from pipewarden.posture import check_posture
from pipewarden.posture._checks_storage import check_storage
from pipewarden.workspace import Workspace, WorkspaceConfig

# A made-up password: it must never reach a report.
SECRET = "not-a-real-db-" + "password-41"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for name in (
        "PIPEWARDEN_DATABASE_URL",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    return Workspace.init(tmp_path / "ws")


def _storage(ws: Workspace) -> dict[str, str]:
    return {f.rule_id: f.message for result in check_storage(ws) for f in result.findings}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # libpq's default is 'prefer', which falls back to no TLS without a word.
        (f"postgresql://pw:{SECRET}@db.example.internal:5432/pw", {"PW-POST-131"}),
        (f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=disable", {"PW-POST-131"}),
        (f"postgresql+psycopg://pw:{SECRET}@10.1.2.3/pw?sslmode=allow", {"PW-POST-131"}),
        (f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=require", {"PW-POST-132"}),
        (
            f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=require&sslrootcert=/etc/pw/ca.pem",
            set(),
        ),
        (f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=verify-ca", set()),
        (f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=verify-full", set()),
        (f"postgresql://pw:{SECRET}@db.example.internal/pw?sslmode=sometimes", {"PW-POST-139"}),
        # On this machine: a loopback address, or a Unix socket.
        (f"postgresql://pw:{SECRET}@127.0.0.1:5432/pw", set()),
        (f"postgresql://pw:{SECRET}@localhost/pw?sslmode=disable", set()),
        ("postgresql://pw@/pw?host=/var/run/postgresql", set()),
        ("sqlite:////srv/pw/pipewarden.db", set()),
        ("not a url at all", {"PW-POST-139"}),
    ],
)
def test_database_connection_security(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, url: str, expected: set[str]
) -> None:
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", url)
    found = _storage(ws)
    assert set(found) == expected
    assert not any(SECRET in message for message in found.values())


def test_pgsslmode_from_the_environment_counts_and_the_password_in_a_query_is_never_shown(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", f"postgresql://pw@db.example.internal/pw?password={SECRET}")
    found = _storage(ws)
    assert set(found) == {"PW-POST-131"} and "libpq's default" in found["PW-POST-131"]
    assert SECRET not in found["PW-POST-131"]
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    assert _storage(ws) == {}


def _s3(ws: Workspace, endpoint: str | None) -> Workspace:
    config = WorkspaceConfig(backend="s3", s3_bucket="models", s3_endpoint_url=endpoint)
    return Workspace(ws.root, config)


def test_s3_endpoint_over_http(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _storage(ws) == {}  # a local store has no endpoint
    key_id = "AKIA" + "POSTURETESTFAKE1"  # AWS-shaped, made up
    found = _storage(_s3(ws, f"http://{key_id}:x@192.0.2.7:9000"))
    assert set(found) == {"PW-POST-133"} and "http://192.0.2.7:9000 is plain HTTP" in found["PW-POST-133"]
    assert key_id not in found["PW-POST-133"]
    assert _storage(_s3(ws, "https://s3.example.internal")) == {}
    assert _storage(_s3(ws, "http://127.0.0.1:9000")) == {}  # on this machine
    assert _storage(_s3(ws, None)) == {}  # AWS's own endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio.internal:9000")
    found = _storage(_s3(ws, None))
    assert set(found) == {"PW-POST-133"} and found["PW-POST-133"].startswith("$AWS_ENDPOINT_URL_S3:")
    assert set(_storage(_s3(ws, "ftp://files.internal"))) == {"PW-POST-139"}


def test_posture_over_sqlite_and_postgresql(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PGSSLMODE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", database_url)
    ws = Workspace.init(tmp_path / "ws")
    report = check_posture(ws, probe_sinks=False)
    assert "PW-POST-140" in {f.rule_id for f in report.findings}
    doing = Acting(
        actor=Actor("operator", "system", "cli:test"), events=ws.events(), authorizer=LocalOperator()
    )
    doing.perform("audit.verify", "audit:log", ws.audit_log().verify)
    report = check_posture(ws, probe_sinks=False)
    rules = {f.rule_id for f in report.findings}
    # The test server is on loopback: no connection finding. Verified just now: no audit finding.
    assert not rules & {"PW-POST-131", "PW-POST-132", "PW-POST-139", "PW-POST-140", "PW-POST-149"}
    assert "PW-POST-119" not in rules and "PW-POST-159" not in rules
    if database_url.startswith("postgresql"):
        password = database_url.split("@")[0].rpartition(":")[2]
        assert password and password not in json.dumps(report.to_dict())


def test_a_database_that_cannot_be_reached_leaves_its_checks_not_determinable(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.posture.deployment import closed_port

    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", f"postgresql://pw:{SECRET}@127.0.0.1:{closed_port()}/pw")
    report = check_posture(Workspace.open(ws.root), probe_sinks=False)
    by_rule: dict[str, set[str]] = {}
    for f in report.findings:
        by_rule.setdefault(f.rule_id, set()).add(str(f.evidence.get("check", "")))
    # Four identity checks (role-mfa needs only the policy), the audit log and the outbox cannot be read:
    # each says so, none passes.
    assert by_rule["PW-POST-119"] == {"mfa-enrolment", "stale-accounts", "token-expiry", "token-use"}
    assert "PW-POST-149" in by_rule and "PW-POST-159" in by_rule
    assert next(f for f in report.findings if f.rule_id == "PW-POST-200").evidence["not_determinable"] == 6
    assert SECRET not in json.dumps(report.to_dict())
