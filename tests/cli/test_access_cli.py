"""`pipewarden access check`, `role ...` and `group ...` as a user runs them: real child processes.

Principals are rows made here; the acting administrator's credential is a real
login-session token in the workspace's database, passed as ``$PIPEWARDEN_TOKEN``
the way a CI job passes one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from pipewarden.db import principals
from pipewarden.identity import Grant
from pipewarden.identity._apitokens import insert_token
from pipewarden.identity._bindings import grant
from pipewarden.workspace import Workspace

CLI = [sys.executable, "-m", "pipewarden.cli"]
POLICY = """\
format: pipewarden.policy/1
roles:
  release-manager:
    description: promotes models to production
    allow:
      - actions: [artifact.write, model.sign]
        resources: ["artifact:prod/*", "model:prod/*"]
deny:
  - actions: artifact.delete
    resources: "artifact:prod/*"
    reason: production versions are kept for audits
"""


def run(ws: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PIPEWARDEN_TOKEN", "PIPEWARDEN_DATABASE_URL"}}
    env.update(PIPEWARDEN_WORKSPACE=str(ws), XDG_CONFIG_HOME=str(ws.parent / "config"), COLUMNS="200")
    if token is not None:
        env["PIPEWARDEN_TOKEN"] = token
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )


def _principal(ws: Workspace, name: str, *grants: Grant, kind: str = "user") -> None:
    with ws.database().transaction() as conn:
        conn.execute(
            insert(principals).values(
                name=name, kind=kind, display_name="", disabled=False, created_at=datetime.now(UTC)
            )
        )
        for g in grants:
            grant(conn, subject=name, role=g.role, scope=g.scope, granted_by="setup")


def _session(ws: Workspace, name: str, *, mfa: bool) -> str:
    """A login session of `name` (as `pipewarden login` makes one), returned as its token."""
    with ws.database().transaction() as conn:
        pid = conn.execute(select(principals.c.id).where(principals.c.name == name)).scalar_one()
        new = insert_token(
            conn,
            principal_id=pid,
            owner=name,
            kind="session",
            scopes=[],
            description="test session",
            created_at=datetime.now(UTC),
            lifetime=timedelta(hours=1),
            mfa=mfa,
        )
    return new.plaintext


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    result = run(root, "init")
    assert result.returncode == 0, result.stderr
    workspace = Workspace.open(root)
    _principal(workspace, "root", Grant("admin"))
    _principal(workspace, "ada", Grant("ml-engineer", "project:fraud"))
    _principal(workspace, "ci", kind="service")
    return root


def _events(root: Path) -> list[tuple[str, str, str, str]]:
    log = Workspace.open(root).audit_log()
    return [(e.event.action, e.event.actor, e.event.resource, e.event.outcome) for e in log.records()]


def test_access_check_prints_the_decision_and_its_rule(ws: Path) -> None:
    allowed = run(ws, "access", "check", "ada", "artifact.write", "artifact:fraud/model")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == (
        "allowed: ada artifact.write on artifact:fraud/model\n"
        "  rule: role ml-engineer (scope project:fraud) allows artifact.write\n"
    )
    denied = run(ws, "access", "check", "ada", "artifact.write", "artifact:payments/model")
    assert denied.returncode == 1
    assert "denied: ada artifact.write on artifact:payments/model" in denied.stdout
    assert "no rule allows it (deny by default)" in denied.stdout
    no_mfa = run(ws, "access", "check", "ada", "artifact.write", "artifact:fraud/model", "--no-mfa", "--json")
    assert no_mfa.returncode == 1
    doc = json.loads(no_mfa.stdout)
    assert doc == {
        "allowed": False,
        "subject": "ada",
        "action": "artifact.write",
        "resource": "artifact:fraud/model",
        "rule": "role ml-engineer requires MFA and this session has none",
        "needs_mfa": True,
        "mfa": False,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eve", "artifact.read", "artifact:x"), "eve: no such user or service account"),
        (("ada", "artifact.reed", "artifact:x"), "'artifact.reed': not a pipewarden action"),
        (("ada", "artifact.read", "fraud/model"), "a resource is named '<type>:<name>'"),
    ],
)
def test_access_check_errors_exit_2(ws: Path, args: tuple[str, str, str], message: str) -> None:
    result = run(ws, "access", "check", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_role_list_shows_built_in_and_custom_roles_and_deny_rules(ws: Path) -> None:
    (ws / "policy.yaml").write_text(POLICY)
    os.chmod(ws / "policy.yaml", 0o600)
    text = run(ws, "role", "list")
    assert text.returncode == 0, text.stderr
    assert "admin (built-in, requires MFA): everything" in text.stdout
    assert "auditor (built-in): reads, verifies and exports the audit log; nothing else\n" in text.stdout
    assert f"release-manager ({ws / 'policy.yaml'}): promotes models to production" in text.stdout
    assert "  allow artifact.write, model.sign on artifact:prod/*, model:prod/*" in text.stdout
    assert (
        "  deny  artifact.delete on artifact:prod/* (production versions are kept for audits)" in text.stdout
    )
    doc = json.loads(run(ws, "role", "list", "--json").stdout)
    assert [r["name"] for r in doc["roles"]] == [
        "admin",
        "ml-engineer",
        "data-scientist",
        "auditor",
        "viewer",
        "pipeline-service",
        "release-manager",
    ]
    assert doc["roles"][3]["allow"] == [{"actions": ["audit.read", "audit.verify", "audit.export"]}]
    assert doc["deny"][0]["reason"] == "production versions are kept for audits"
    # The policy file decides `access check` too: the global deny beats admin.
    delete = run(ws, "access", "check", "root", "artifact.delete", "artifact:prod/model")
    assert delete.returncode == 1
    assert f"deny rule 1 in {ws / 'policy.yaml'} denies artifact.delete on artifact:prod/*" in delete.stdout


def test_a_bad_policy_file_stops_every_command_with_its_line(ws: Path) -> None:
    (ws / "policy.yaml").write_text(
        "format: pipewarden.policy/1\nroles:\n  ops:\n    allow: [alert.acknowledge]\n"
    )
    os.chmod(ws / "policy.yaml", 0o600)
    for args in (("role", "list"), ("access", "check", "ada", "alert.read", "alert:a1")):
        result = run(ws, *args)
        assert result.returncode == 2
        assert (
            "policy.yaml:4: roles.ops.allow[0]: 'alert.acknowledge': not a pipewarden action" in result.stderr
        )


def test_role_grant_and_revoke_as_an_administrator(ws: Path) -> None:
    token = _session(Workspace.open(ws), "root", mfa=True)
    granted = run(ws, "role", "grant", "viewer", "--user", "ci", "--scope", "project:fraud", token=token)
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout == "granted viewer at project:fraud to user ci\n"
    rows = json.loads(run(ws, "role", "bindings", "--json").stdout)
    assert {(r["subject"], r["role"], r["scope"], r["granted_by"]) for r in rows} == {
        ("root", "admin", "*", "setup"),
        ("ada", "ml-engineer", "project:fraud", "setup"),
        ("ci", "viewer", "project:fraud", "root"),
    }
    assert run(ws, "access", "check", "ci", "artifact.list", "artifact:fraud/model").returncode == 0
    again = run(ws, "role", "grant", "viewer", "--user", "ci", "--scope", "project:fraud", token=token)
    assert again.returncode == 1 and "ci: already holds role viewer with scope project:fraud" in again.stderr
    revoked = run(ws, "role", "revoke", "viewer", "--user", "ci", "--scope", "project:fraud", token=token)
    assert revoked.returncode == 0, revoked.stderr
    assert run(ws, "access", "check", "ci", "artifact.list", "artifact:fraud/model").returncode == 1
    grants = [e for e in _events(ws) if e[0] in {"role.grant", "role.revoke"}]
    assert grants == [
        ("role.grant", "root", "role:viewer", "allowed"),
        ("role.grant", "root", "role:viewer", "error"),
        ("role.revoke", "root", "role:viewer", "allowed"),
    ]


def test_role_grant_is_refused_without_the_permission_and_the_refusal_recorded(ws: Path) -> None:
    nobody = run(ws, "role", "grant", "admin", "--user", "ada")
    assert nobody.returncode == 1 and "not logged in" in nobody.stderr
    ada = _session(Workspace.open(ws), "ada", mfa=True)
    refused = run(ws, "role", "grant", "admin", "--user", "ada", token=ada)
    assert refused.returncode == 1
    assert (
        "ada: role.grant on role:admin is not allowed (no rule allows it (deny by default))" in refused.stderr
    )
    root_without_mfa = _session(Workspace.open(ws), "root", mfa=False)
    refused = run(ws, "role", "grant", "viewer", "--user", "ada", token=root_without_mfa)
    assert refused.returncode == 1 and "role admin requires MFA and this session has none" in refused.stderr
    assert [e for e in _events(ws) if e[0] == "role.grant"] == [
        ("role.grant", "ada", "role:admin", "denied"),
        ("role.grant", "root", "role:viewer", "denied"),
    ]
    rows = json.loads(run(ws, "role", "bindings", "--json").stdout)
    assert [(r["role"], r["scope"]) for r in rows if r["subject"] == "ada"] == [
        ("ml-engineer", "project:fraud")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("viewer",), "name exactly one of --user and --group"),
        (("viewer", "--user", "ada", "--group", "ops"), "name exactly one of --user and --group"),
        (("release-manager", "--user", "ada"), "release-manager: no such role"),
        (("viewer", "--user", "ada", "--scope", "projekt:x"), "'projekt' is not a resource type"),
    ],
)
def test_role_grant_usage_errors_exit_2(ws: Path, args: tuple[str, ...], message: str) -> None:
    token = _session(Workspace.open(ws), "root", mfa=True)
    result = run(ws, "role", "grant", *args, token=token)
    assert result.returncode == 2
    assert message in result.stderr


def test_groups_from_the_command_line(ws: Path) -> None:
    token = _session(Workspace.open(ws), "root", mfa=True)
    for args in (
        ("group", "create", "ml"),
        ("group", "add", "ml", "ci"),
        ("role", "grant", "pipeline-service", "--group", "ml", "--scope", "project:fraud"),
    ):
        result = run(ws, *args, token=token)
        assert result.returncode == 0, (args, result.stderr)
    assert run(ws, "group", "list").stdout == "ml: members ci; roles pipeline-service@project:fraud\n"
    assert json.loads(run(ws, "group", "list", "--json").stdout) == [
        {"name": "ml", "members": ["ci"], "roles": ["pipeline-service@project:fraud"]}
    ]
    assert run(ws, "access", "check", "ci", "monitor.ingest", "monitor:fraud/stream").returncode == 0
    assert run(ws, "group", "remove", "ml", "ci", token=token).returncode == 0
    assert run(ws, "access", "check", "ci", "monitor.ingest", "monitor:fraud/stream").returncode == 1
    assert run(ws, "group", "delete", "ml", token=token).returncode == 0
    assert run(ws, "group", "list").stdout == ""
    ada = _session(Workspace.open(ws), "ada", mfa=True)
    refused = run(ws, "group", "create", "mine", token=ada)
    assert refused.returncode == 1 and "ada: group.manage on group:mine is not allowed" in refused.stderr
    changes = [e for e in _events(ws) if e[0] == "group.manage"]
    assert changes == [
        ("group.manage", "root", "group:ml", "allowed"),
        ("group.manage", "root", "group:ml", "allowed"),
        ("group.manage", "root", "group:ml", "allowed"),
        ("group.manage", "root", "group:ml", "allowed"),
        ("group.manage", "ada", "group:mine", "denied"),
    ]
