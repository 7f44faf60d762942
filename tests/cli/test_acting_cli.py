"""Commands that also serve the local operator (store, scan, sign, verify, keys, audit) act as the
principal whose credentials they are given, authorized by role; without credentials, as the local
operator. Every one of them is an event in the workspace's audit log."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pipewarden.identity import Grant
from pipewarden.workspace import Workspace
from tests.cli.test_access_cli import _principal, _session, run


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert run(root, "init").returncode == 0
    workspace = Workspace.open(root)
    _principal(workspace, "ada", Grant("ml-engineer", "project:fraud"))
    _principal(workspace, "eve", Grant("auditor"))
    _principal(workspace, "vic", Grant("viewer"))
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    return root


def _events(root: Path) -> list[tuple[str, str, str, str, str]]:
    log = Workspace.open(root).audit_log()
    return [
        (e.event.action, e.event.actor_kind, e.event.actor, e.event.resource, e.event.outcome)
        for e in log.records()
    ]


def test_a_logged_in_principal_is_authorized_by_role_and_recorded(ws: Path, tmp_path: Path) -> None:
    ada = _session(Workspace.open(ws), "ada", mfa=True)
    rows = str(tmp_path / "rows.csv")
    done = run(ws, "store", "put", rows, "--name", "fraud/train", token=ada)
    assert done.returncode == 0, done.stderr
    refused = run(ws, "store", "put", rows, "--name", "churn/train", token=ada)
    assert refused.returncode == 1
    assert "ada: artifact.write on artifact:churn/train is not allowed" in refused.stderr
    # --actor names the local operator only; it never changes who a credential says is acting.
    run(ws, "store", "put", rows, "--name", "fraud/train", "--actor", "mallory", token=ada)
    assert _events(ws) == [
        ("artifact.write", "user", "ada", "artifact:fraud/train", "allowed"),
        ("artifact.write", "user", "ada", "artifact:churn/train", "denied"),
        ("artifact.write", "user", "ada", "artifact:fraud/train", "allowed"),
    ]
    assert Workspace.open(ws).store().names() == ["fraud/train"]


def test_the_audit_trail_is_for_auditors(ws: Path) -> None:
    workspace = Workspace.open(ws)
    eve, vic = _session(workspace, "eve", mfa=False), _session(workspace, "vic", mfa=False)
    assert run(ws, "audit", "verify", token=eve).returncode == 0
    tail = run(ws, "audit", "tail", "-n", "5", token=eve)
    assert tail.returncode == 0 and "audit.verify" in tail.stdout
    denied = run(ws, "audit", "tail", token=vic)
    assert denied.returncode == 1 and "audit.read on audit:log is not allowed" in denied.stderr
    assert run(ws, "audit", "export", token=vic).returncode == 1
    # The auditor reads the trail and nothing else: the store lists nothing for it.
    Workspace.open(ws).store()
    listing = run(ws, "store", "ls", token=eve)
    assert listing.returncode == 0 and listing.stdout == ""
    assert [e[0] + ":" + e[4] for e in _events(ws)] == [
        "audit.verify:allowed",
        "audit.read:allowed",
        "audit.read:denied",
        "audit.export:denied",
        "artifact.list:allowed",
    ]


def test_a_bad_credential_stops_the_command_and_never_falls_back(ws: Path, tmp_path: Path) -> None:
    forged = "pwt_AAAAAAAAAAAA_" + "A" * 43
    result = run(ws, "store", "put", str(tmp_path / "rows.csv"), "--name", "x", token=forged)
    assert result.returncode == 1
    assert "the credentials were not accepted" in result.stderr
    assert Workspace.open(ws).store().names() == []
    assert [(e[0], e[4]) for e in _events(ws)] == [("token.use", "denied")]


def test_without_credentials_the_local_operator_acts_and_is_recorded_as_system(
    ws: Path, tmp_path: Path
) -> None:
    rows = str(tmp_path / "rows.csv")
    assert run(ws, "store", "put", rows, "--name", "data/rows", "--actor", "build-bot").returncode == 0
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"layers": 2}')
    assert run(ws, "sign", str(model)).returncode == 0
    assert run(ws, "verify", str(model)).returncode == 0
    (model / "config.json").write_text('{"layers": 3}')
    assert run(ws, "verify", str(model)).returncode == 1
    scanned = run(ws, "scan", str(_safetensors(tmp_path / "w.safetensors")))
    assert scanned.returncode == 0, scanned.stderr
    events = Workspace.open(ws).audit_log()
    got = [(e.event.action, e.event.actor_kind, e.event.outcome) for e in events.records()]
    assert got == [
        ("artifact.write", "system", "allowed"),
        ("model.sign", "system", "allowed"),
        ("model.verify", "system", "allowed"),
        ("model.verify", "system", "error"),
        ("scan.run", "system", "allowed"),
    ]
    first = next(iter(events.records())).event
    assert first.actor == "build-bot" and first.origin.startswith("cli:")
    failed = list(events.records())[3].event
    assert failed.attributes["reason"] == "integrity" and "config.json" in str(failed.attributes["detail"])


def test_scanning_outside_a_workspace_needs_none_and_records_nothing(tmp_path: Path) -> None:
    result = run(tmp_path / "no-workspace-here", "scan", str(_safetensors(tmp_path / "w.safetensors")))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "no-workspace-here").exists()


def _safetensors(path: Path) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    return path


RULES = """\
format: pipewarden.policy/1
roles:
  intake-scanner:
    allow:
      - actions: scan.run
        resources: "scan:inbox/*"
deny:
  - actions: model.sign
    resources: "model:prod/*"
    reason: production models are signed by the release pipeline
"""


def test_files_are_named_from_the_project_folder_and_every_path_is_authorized(
    ws: Path, tmp_path: Path
) -> None:
    (ws / "policy.yaml").write_text(RULES)
    (ws / "policy.yaml").chmod(0o600)
    workspace = Workspace.open(ws)
    _principal(workspace, "root", Grant("admin"))
    _principal(workspace, "bot", Grant("intake-scanner"), kind="service")
    root, bot = _session(workspace, "root", mfa=True), _session(workspace, "bot", mfa=False)
    for folder in ("prod", "staging", "inbox", "private"):
        (tmp_path / folder).mkdir()
        _safetensors(tmp_path / folder / "m.safetensors")
    # The policy names files relative to the folder holding the workspace: the deny rule bites.
    refused = run(ws, "sign", str(tmp_path / "prod" / "m.safetensors"), token=root)
    assert (
        refused.returncode == 1 and "production models are signed by the release pipeline" in refused.stderr
    )
    assert run(ws, "sign", str(tmp_path / "staging" / "m.safetensors"), token=root).returncode == 0
    # A scan of several paths needs the permission on each one, not only on the first.
    inbox, private = str(tmp_path / "inbox" / "m.safetensors"), str(tmp_path / "private" / "m.safetensors")
    assert run(ws, "scan", inbox, token=bot).returncode == 0
    both = run(ws, "scan", inbox, private, token=bot)
    assert both.returncode == 1 and "scan.run on scan:private/m.safetensors is not allowed" in both.stderr
    got = [(e[0], e[3], e[4]) for e in _events(ws)]
    assert got == [
        ("model.sign", "model:prod/m.safetensors", "denied"),
        ("model.sign", "model:staging/m.safetensors", "allowed"),
        ("scan.run", "scan:inbox/m.safetensors", "allowed"),
        ("scan.run", "scan:private/m.safetensors", "denied"),
    ]
