"""pipewarden's gate over pipewarden itself: the repository passes its own policy, its lock covers its
dependencies, and the shipped CI recipes call commands and options that exist."""

from __future__ import annotations

import re
import shlex
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipewarden.supply import OfflineDatabase, audit, read_dependencies
from tests.cli.clirun import run

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_passes_its_own_gate() -> None:
    done = run("ci", ".", "--policy", "pipewarden-ci.yaml", "-f", "json", cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout[-3000:]
    lines = done.stderr.splitlines()
    assert lines[-1] == "gate: passed"
    ran = {line.split()[1] for line in lines if line.startswith("PASS")}
    assert {"scan", "deps", "secrets", "data:example-train"} <= ran


def test_the_lock_pins_every_core_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = {d.key: d for d in read_dependencies(ROOT / "requirements.lock")}
    for line in project["dependencies"]:
        wanted = Requirement(line)
        dep = locked.get(canonicalize_name(wanted.name))
        assert dep is not None, f"requirements.lock lacks {wanted.name}"
        assert dep.pinned and dep.hashes, f"requirements.lock: {wanted.name} not pinned with hashes"
        assert wanted.specifier.contains(dep.pinned, prereleases=True), f"{wanted.name}=={dep.pinned}"


def test_the_offline_database_catches_a_pin_before_a_cited_fix(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("jinja2==3.1.5 --hash=sha256:" + "0" * 64 + "\n")
    report = audit(read_dependencies(lock), OfflineDatabase(ROOT / ".ci" / "osv-pypi"), now=datetime.now(UTC))
    (vuln,) = [f for f in report.findings if f.rule_id == "PW-DEPS-101"]
    assert "GHSA-cpwx-vrp4-4pq7" in vuln.evidence["advisories"] and vuln.evidence["fix"] == "3.1.6"


def _commands(text: str) -> list[list[str]]:
    return [shlex.split(m) for m in re.findall(r"(pipewarden [^\n#]+)", text)]


def _check(argv: list[str]) -> None:
    """The subcommand exists and every long option it is given is one of its options."""
    help_text = run(argv[1], "--help", cwd=ROOT)
    assert help_text.returncode == 0, argv
    for arg in argv[2:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in help_text.stdout, f"{argv[1]} has no option {arg}"


def test_the_github_workflow_runs_the_gate_and_uploads_sarif() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    (gate,) = [r for r in runs if r.startswith("pipewarden ci")]
    _check(shlex.split(gate))
    assert "--sarif pipewarden.sarif" in gate
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "pipewarden.sarif"
    assert workflow["jobs"]["gate"]["permissions"]["security-events"] == "write"


def test_the_pre_commit_hooks_call_real_commands() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {
        "pipewarden-ci",
        "pipewarden-secrets",
        "pipewarden-scan",
        "pipewarden-deps",
    }
    for hook in hooks:
        argv = shlex.split(hook["entry"])
        assert argv[0] == "pipewarden"
        _check(argv)
        if "files" in hook:
            re.compile(hook["files"])
    scan = next(h for h in hooks if h["id"] == "pipewarden-scan")
    assert re.search(scan["files"], "models/weights.pt") and not re.search(scan["files"], "src/app.py")
