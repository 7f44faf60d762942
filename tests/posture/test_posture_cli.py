"""`pipewarden posture` as an operator runs it: exit codes, report files, who may run it, the record it
leaves, and a catalogue every id of which docs/posture.md documents."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pipewarden.cli import app
from pipewarden.cli._posture import run_posture_recorded
from pipewarden.errors import AccessDenied
from pipewarden.events import Actor
from pipewarden.findings import Severity
from pipewarden.identity import Accounts, Authenticator, Grant, PasswordPolicy, Policy
from pipewarden.posture import POSTURE_CHECKS, check_posture
from pipewarden.workspace import Workspace
from tests.posture.deployment import ORIGIN, PASSWORD, Deployment, closed_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "posture.md"


@pytest.fixture
def dep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path, monkeypatch)
    try:
        yield deployment
    finally:
        deployment.close()


def _env(dep: Deployment, token: str | None = None) -> dict[str, str | None]:
    return {
        "PIPEWARDEN_WORKSPACE": str(dep.ws.root),
        "XDG_CONFIG_HOME": str(dep.root / "home" / ".config"),
        "PIPEWARDEN_TOKEN": token,
        "PIPEWARDEN_DATABASE_URL": None,
        "PIPEWARDEN_FAIL_ON": None,
        "PIPEWARDEN_FORMAT": None,
        "PIPEWARDEN_OSV_DB": None,
        "PIPEWARDEN_POSTURE_URL": None,
        "PIPEWARDEN_TLS_CERT": None,
        "PIPEWARDEN_CA": None,
        "PIPEWARDEN_OUTPUT": None,
        "PIPEWARDEN_KEK_MAX_AGE": None,
        "COLUMNS": "200",
    }


def posture(dep: Deployment, *args: str, token: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(
        app, ["posture", *args], env={**_env(dep, token), **env}, catch_exceptions=False
    )


def _events(ws: Workspace) -> list[tuple[str, str, str, dict[str, object]]]:
    return [
        (e.event.action, e.event.actor, e.event.outcome, dict(e.event.attributes))
        for e in Workspace.open(ws.root).audit_log().records()
    ]


def test_exit_codes_follow_the_threshold_and_the_run_is_recorded(dep: Deployment) -> None:
    clean = posture(
        dep,
        "--tls-cert",
        str(dep.tls_cert),
        "--ca",
        str(dep.ca_file),
        "--osv-db",
        str(dep.osv_db),
        "-f",
        "json",
    )
    assert clean.exit_code == 0, clean.output
    (summary,) = json.loads(clean.stdout)["findings"]
    assert summary["rule_id"] == "PW-POST-200"
    assert summary["message"].startswith("16 checks: 16 passed, 0 failed, 0 not determinable, 0 not checked")
    # Without the certificate and the database: said as info, still exit 0 at the default threshold.
    partial = posture(dep)
    assert partial.exit_code == 0 and "PW-POST-100" in partial.stdout and "PW-POST-161" in partial.stdout
    assert posture(dep, "--fail-on", "info").exit_code == 1
    dep.user("bob", "admin", days_ago=3)
    assert posture(dep).exit_code == 1
    assert posture(dep, "--fail-on", "critical").exit_code == 0
    runs = [
        (actor, outcome, attrs)
        for action, actor, outcome, attrs in _events(dep.ws)
        if action == "posture.check"
    ]
    assert len(runs) == 5 and all(outcome == "allowed" for _, outcome, _ in runs)
    assert runs[-1][2]["max_severity"] == "high" and runs[-1][2]["blocked"] is False


def test_a_json_report_file_is_written(dep: Deployment) -> None:
    out = dep.root / "posture.json"
    result = posture(dep, "--format", "json", "-o", str(out), "--no-probe", "--kek-max-age", "30")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["command"] == "posture"
    rules = {f["rule_id"] for f in doc["findings"]}
    assert "PW-POST-155" in rules and "PW-POST-200" in rules
    summary = next(f for f in doc["findings"] if f["rule_id"] == "PW-POST-200")
    assert summary["evidence"]["baseline"]["kek_max_age_days"] == 30


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "yaml"],
        ["--fail-on", "severe"],
        ["--url", "ftp://pw.internal"],
        ["--ca", "ca.pem"],
        ["--kek-max-age", "0"],
        ["-w", "/nonexistent/workspace"],
    ],
)
def test_usage_errors_exit_2(dep: Deployment, args: list[str]) -> None:
    assert posture(dep, *args).exit_code == 2


def test_a_principal_may_run_it_only_with_the_reads_it_needs(dep: Deployment) -> None:
    passwords = PasswordPolicy(memory_kib=19456, iterations=2)
    db = dep.ws.database()
    Accounts(db, events=dep.events, passwords=passwords).create_user(
        "audra", password=PASSWORD, actor=Actor("ada", "user", ORIGIN), grants=[Grant("auditor")]
    )
    auth = Authenticator(
        db,
        events=dep.events,
        keyring=dep.ws.keyring(),
        policy=Policy.for_workspace(dep.ws.root),
        passwords=passwords,
    )
    session = auth.login("audra", PASSWORD, origin=ORIGIN).session
    assert session is not None
    refused = posture(dep, token=session.token)
    assert refused.exit_code == 1
    assert "user.read on user:* is not allowed" in refused.stderr
    assert ("user.read", "audra", "denied") in [e[:3] for e in _events(dep.ws)]
    assert not any(e[0] == "posture.check" and e[1] == "audra" for e in _events(dep.ws))
    # An administrator in a session that passed MFA may.
    dep.user("root-admin", "admin", days_ago=0)
    dep.enrol("root-admin", days_ago=0)
    allowed = posture(
        dep, "--tls-cert", str(dep.tls_cert), "--ca", str(dep.ca_file), token=dep.sessions["root-admin"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert ("posture.check", "root-admin", "allowed") in [e[:3] for e in _events(dep.ws)]


def test_a_key_file_open_to_everyone_is_still_reported(dep: Deployment) -> None:
    dep.ws.signing_key_path.chmod(0o644)
    # The audit log cannot be opened with such a key, so the run is not recorded, and says so.
    result = posture(dep)
    assert result.exit_code == 1
    assert "PW-POST-120" in result.stdout and "critical" in result.stdout
    assert "not recorded in the audit log" in result.stderr


def test_every_check_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"PW-POST-\d{3}", text))
    assert set(POSTURE_CHECKS) <= documented
    assert documented <= set(POSTURE_CHECKS), documented - set(POSTURE_CHECKS)
    for rule, (title, severity, _fix) in POSTURE_CHECKS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{rule}`")), None)
        assert row is not None, f"{rule} has no row in the table"
        assert f"| {severity.label} |" in row, rule
        assert title in row, rule


def test_without_its_database_the_command_cannot_authorize_or_record_and_exits_2(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "not-a-real-db-" + "password-88"
    url = f"postgresql://pw:{secret}@127.0.0.1:{closed_port()}/pw"
    result = posture(dep, PIPEWARDEN_DATABASE_URL=url)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: database ") and "127.0.0.1" in result.stderr
    assert secret not in result.stderr
    # The library call, which needs no authorization, reports the checks that read the database.
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", url)
    report = check_posture(Workspace.open(dep.ws.root), probe_sinks=False)
    assert {"PW-POST-119", "PW-POST-149", "PW-POST-159"} <= {f.rule_id for f in report.findings}


def test_the_gate_can_run_posture_recorded_as_the_command_does(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(dep).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    ws = Workspace.open(dep.ws.root)
    dep.user("bob", "admin", days_ago=3)  # an administrator without MFA: high
    report = run_posture_recorded(ws, lambda: check_posture(ws, probe_sinks=False), threshold=Severity.HIGH)
    assert "PW-POST-111" in {f.rule_id for f in report.findings}
    action, actor, outcome, attributes = _events(dep.ws)[-1]
    assert (action, outcome) == ("posture.check", "allowed") and actor != "bob"
    assert attributes["max_severity"] == "high" and attributes["blocked"] is True
    # With credentials, each read is authorized first: a principal without them is refused, recorded.
    passwords = PasswordPolicy(memory_kib=19456, iterations=2)
    Accounts(dep.ws.database(), events=dep.events, passwords=passwords).create_user(
        "vic", password=PASSWORD, actor=Actor("ada", "user", ORIGIN), grants=[Grant("viewer")]
    )
    auth = Authenticator(
        dep.ws.database(),
        events=dep.events,
        keyring=dep.ws.keyring(),
        policy=Policy.for_workspace(dep.ws.root),
        passwords=passwords,
    )
    session = auth.login("vic", PASSWORD, origin=ORIGIN).session
    assert session is not None
    monkeypatch.setenv("PIPEWARDEN_TOKEN", session.token)
    with pytest.raises(AccessDenied):
        run_posture_recorded(ws, lambda: check_posture(ws, probe_sinks=False), threshold=Severity.HIGH)
    assert ("user.read", "vic", "denied") in [e[:3] for e in _events(dep.ws)]
