"""`pipewarden ci`: every check over one tree, one merged report, one exit code, fail closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipewarden.data import profile, read_table
from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.gate import GatePolicy, run_gate
from tests.cli.clirun import run
from tests.scan._asm import system_call
from tests.supply.osvfixtures import write_folder

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
H = "sha256:" + "ab" * 32
# A made-up key in the AWS access key id shape, split so this file holds no such literal.
FAKE_AWS_KEY = "AKIA" + "ZQ3B7XK2M9PLW4RT"


def project(root: Path) -> Path:
    """A small ML repository: code, a clean data set with its contract, pinned dependencies."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text("import sklearn\n\nprint('training')\n")
    (root / "data").mkdir()
    rows = "\n".join(f"{i % 7 + 0.5},{(i * 3) % 11 + 1.0},{'ab'[i % 2]}" for i in range(60))
    (root / "data" / "train.csv").write_text("x,y,label\n" + rows + "\n")
    contract = profile(read_table(root / "data" / "train.csv", label="label"))
    (root / "data" / "contract.yaml").write_text(contract.to_yaml())
    (root / "requirements.lock").write_text(f"torchlike==2.4.0 --hash={H}\nlisted==1.0 --hash={H}\n")
    write_folder(root / "osv")
    return root


POLICY = """
version: 1
fail_on: medium
deps: {paths: [requirements.lock], db: osv}
data:
  - {name: train, data: data/train.csv, contract: data/contract.yaml}
"""


def gate(root: Path, text: str = POLICY):  # type: ignore[no-untyped-def]
    return run_gate(root, policy=GatePolicy.from_yaml(text, source="ci.yaml"), now=NOW)


def test_a_clean_project_passes_every_check(tmp_path: Path) -> None:
    result = gate(project(tmp_path))
    assert [(s.name, s.verdict) for s in result.steps] == [
        ("scan", "pass"),
        ("deps", "pass"),
        ("secrets", "pass"),
        ("data:train", "pass"),
    ]
    assert result.exit_code == 0 and result.passed
    assert dict(result.skipped) == {"posture": "no workspace given"}
    (summary,) = [f for f in result.report.findings if f.rule_id == "PW-CI-200"]
    assert summary.evidence["passed"] is True
    assert summary.evidence["checks"]["posture"]["verdict"] == "off"
    assert result.report.command == "ci"
    assert result.summary_lines()[-1] == "gate: passed"


def test_each_check_fails_the_gate_on_its_own_finding(tmp_path: Path) -> None:
    root = project(tmp_path)
    # A model file whose pickle runs os.system on load (payload: echo), hidden under a harmless name.
    (root / "models").mkdir()
    (root / "models" / "weights.bin").write_bytes(system_call("gate"))
    # A vulnerable pin (PWTEST-0001: torchlike 2.0.0 up to 2.3.1).
    (root / "requirements.lock").write_text(f"torchlike==2.1.0 --hash={H}\n")
    (root / "src" / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    with (root / "data" / "train.csv").open("a") as f:
        f.write("=cmd|' /C calc'!A0,1.0,a\n")
    result = gate(root)
    verdicts = {s.name: s.verdict for s in result.steps}
    assert verdicts == {"scan": "fail", "deps": "fail", "secrets": "fail", "data:train": "fail"}
    assert result.exit_code == 1
    rules = {f.rule_id for f in result.report.findings}
    assert {"PW-SCAN-101", "PW-DEPS-101", "PW-CI-200"} <= rules
    assert any(r.startswith("PW-SEC-") for r in rules) and any(r.startswith("PW-DATA-1") for r in rules)
    # Paths are relative to the tree, so a code-scanning service can place them.
    scan_hit = next(f for f in result.report.findings if f.rule_id == "PW-SCAN-101")
    assert scan_hit.location.path == "models/weights.bin"
    # The secret itself is in no rendering of the merged report.
    for fmt in ("text", "json", "sarif", "html"):
        assert FAKE_AWS_KEY not in result.report.render(fmt)


def test_thresholds_are_per_check(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "requirements.lock").write_text("torchlike==2.4.0\n")  # pinned without hashes: medium
    assert gate(root).exit_code == 1
    relaxed = POLICY.replace("db: osv}", "db: osv, fail_on: high}")
    result = gate(root, relaxed)
    assert result.exit_code == 0
    deps = next(s for s in result.steps if s.name == "deps")
    assert [f.rule_id for f in deps.report.findings if f.severity >= Severity.MEDIUM] == ["PW-DEPS-202"]


def test_excluded_paths_are_not_scanned_and_skipped_folders_are_named(tmp_path: Path) -> None:
    root = project(tmp_path)
    for folder in ("fixtures/evil", ".git/objects", "node_modules/x", "env/lib/python3.11/site-packages/p"):
        (root / folder).mkdir(parents=True)
        (root / folder / "model.pkl").write_bytes(system_call("skipped"))
    # A real virtual environment: pyvenv.cfg, an interpreter and site-packages.
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "env" / "bin").mkdir()
    (root / "env" / "bin" / "python").write_text("")
    assert gate(root).steps[0].verdict == "fail"  # fixtures/evil is part of the tree
    result = gate(root, POLICY + "scan: {exclude: ['fixtures/**']}\n")
    assert result.steps[0].verdict == "pass" and result.exit_code == 0
    assert dict(result.not_scanned) == {
        ".git": "version control",
        "env": "a virtual environment",
        "fixtures": "excluded by the policy",
        "node_modules": "a tool's folder at the tree's root",
    }
    (summary,) = [f for f in result.report.findings if f.rule_id == "PW-CI-200"]
    assert summary.evidence["folders_not_scanned"]["env"] == "a virtual environment"
    assert any(
        line.startswith("NOTE") and "env (a virtual environment)" in line for line in result.summary_lines()
    )


@pytest.mark.parametrize(
    "hideout",
    [
        "models/node_modules",  # a tool's folder name, but not at the root
        "models/.tox",
        "models/fake-env",  # a lone pyvenv.cfg does not make a virtual environment
        "src/.pipewarden",
    ],
)
def test_a_folder_name_is_no_hiding_place(tmp_path: Path, hideout: str) -> None:
    root = project(tmp_path)
    (root / hideout).mkdir(parents=True)
    (root / hideout / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / hideout / "weights.bin").write_bytes(system_call("hidden"))
    result = gate(root, POLICY + "scan: {exclude: ['fixtures/**']}\n")
    assert result.steps[0].verdict == "fail"
    assert any(f.location.path == f"{hideout}/weights.bin" for f in result.steps[0].blocking)


def test_a_check_that_cannot_run_fails_the_gate(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "data" / "train.csv").write_bytes(b"")  # an empty file cannot be checked
    result = gate(root)
    step = next(s for s in result.steps if s.name == "data:train")
    assert step.verdict == "error" and step.error
    (finding,) = step.report.findings
    assert finding.rule_id == "PW-CI-101" and finding.severity is Severity.CRITICAL
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        (POLICY.replace("db: osv", "db: missing-db"), "missing-db"),
        (POLICY.replace("data/contract.yaml", "data/nope.yaml"), "data/nope.yaml"),
        (POLICY + "secrets: {baseline: nope.json}\n", "nope.json"),
        (POLICY + "posture: {workspace: nowhere}\n", "nowhere"),
    ],
)
def test_a_policy_pointing_at_nothing_is_a_configuration_error(
    tmp_path: Path, policy: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        gate(project(tmp_path), policy)


def test_the_cli_writes_every_format_and_exits_by_policy(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "pipewarden-ci.yaml").write_text(POLICY)
    done = run("ci", ".", "--sarif", "out.sarif", "--json", "out.json", "--html", "out.html", cwd=root)
    # On failure, the report itself says which finding blocked the gate.
    assert done.returncode == 0, done.stderr + done.stdout
    assert "gate: passed" in done.stderr and "PW-CI-200" in done.stdout
    sarif = json.loads((root / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["automationDetails"]["id"] == "pipewarden/ci/"
    assert json.loads((root / "out.json").read_text())["command"] == "ci"
    assert "<html" in (root / "out.html").read_text().lower()

    (root / "models").mkdir()
    (root / "models" / "m.pkl").write_bytes(system_call("cli"))
    done = run("ci", ".", "-f", "sarif", cwd=root)
    assert done.returncode == 1
    results = json.loads(done.stdout)["runs"][0]["results"]
    hit = next(r for r in results if r["ruleId"] == "PW-SCAN-101")
    assert hit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/m.pkl"
    assert "FAIL  scan" in done.stderr and "gate: FAILED" in done.stderr

    (root / "bad.yaml").write_text("version: 1\nscan: {fail_onn: high}\n")
    done = run("ci", ".", "--policy", "bad.yaml", cwd=root)
    assert done.returncode == 2 and "scan.fail_onn" in done.stderr


def test_with_a_workspace_the_gate_checks_the_deployments_posture(tmp_path: Path) -> None:
    from pipewarden.workspace import Workspace

    root = project(tmp_path / "repo")
    workspace = Workspace.init(tmp_path / "ws")
    result = run_gate(
        root, policy=GatePolicy.from_yaml(POLICY, source="ci.yaml"), workspace=workspace, now=NOW
    )
    posture = next(s for s in result.steps if s.name == "posture")
    rules = {f.rule_id for f in posture.report.findings}
    # A fresh workspace has never had its audit log verified and sends alerts nowhere but the console.
    assert {"PW-POST-140", "PW-POST-151", "PW-POST-200"} <= rules
    assert posture.verdict == "fail" and result.exit_code == 1
    # The same workspace named in the policy instead; posture's own threshold decides.
    named = POLICY + "posture: {workspace: ../ws, probe_sinks: false, fail_on: critical}\n"
    result = gate(root, named)
    assert next(s for s in result.steps if s.name == "posture").verdict == "pass"
    assert result.exit_code == 0
    # Key files open to everyone are critical, whatever else is configured.
    workspace.keyring_path.chmod(0o644)
    result = gate(root, named)
    posture = next(s for s in result.steps if s.name == "posture")
    assert "PW-POST-120" in {f.rule_id for f in posture.blocking} and result.exit_code == 1


def test_an_empty_section_keeps_its_check_on_and_a_gate_with_every_check_off_is_refused(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    (root / "m.pkl").write_bytes(system_call("empty-section"))
    result = gate(root, POLICY + "scan:\n  # nothing set here\n")
    assert result.steps[0].name == "scan" and result.steps[0].verdict == "fail"
    with pytest.raises(ConfigError, match="every check is off"):
        gate(root, "version: 1\nscan: false\ndeps: false\nsecrets: false\n")


def test_a_check_that_crashes_is_a_finding_and_the_other_checks_still_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipewarden.supply

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(pipewarden.supply, "find_secrets", broken)
    result = gate(project(tmp_path))
    crashed = next(s for s in result.steps if s.name == "secrets")
    assert crashed.verdict == "error"
    assert [s.verdict for s in result.steps if s is not crashed] == ["pass", "pass", "pass"]
    (finding,) = crashed.report.findings
    assert finding.rule_id == "PW-CI-101" and "RuntimeError: detector exploded" in finding.message
    assert result.exit_code == 1


def test_a_url_in_a_finding_is_not_taken_for_a_path(tmp_path: Path) -> None:
    from pipewarden.findings import Finding, Location, Report
    from pipewarden.gate._run import _relocated

    root = project(tmp_path)
    url = Finding("PW-X-1", Severity.HIGH, "t", "m", Location(path="https://127.0.0.1:9"))
    here = Finding("PW-X-2", Severity.HIGH, "t", "m", Location(path=str(root / "src" / "train.py")))
    moved = _relocated(root, Report.build(command="x", findings=[url, here], targets=2))
    assert sorted(f.location.path for f in moved.findings) == ["https://127.0.0.1:9", "src/train.py"]


def test_the_cli_gate_runs_posture_as_the_caller_and_records_it(tmp_path: Path) -> None:
    from pipewarden.workspace import Workspace

    root = project(tmp_path / "repo")
    (root / "pipewarden-ci.yaml").write_text(POLICY + "posture: {probe_sinks: false, fail_on: critical}\n")
    workspace = Workspace.init(tmp_path / "ws")
    done = run("ci", ".", "-w", str(tmp_path / "ws"), cwd=root)
    assert done.returncode == 0, done.stderr
    assert "PASS  posture" in done.stderr
    checks = [e.event for e in workspace.audit_log().tail(20) if e.event.action == "posture.check"]
    assert len(checks) == 1 and checks[0].outcome == "allowed"
