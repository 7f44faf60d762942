"""The shipped examples are current and behave as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipewarden.findings import Severity
from pipewarden.scan import scan_path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"


@pytest.mark.parametrize(
    ("script", "folder"),
    [
        ("make_examples.py", "models"),
        ("make_data_examples.py", "data"),
        ("make_monitor_examples.py", "monitor"),
    ],
)
def test_examples_are_what_the_script_writes(script: str, folder: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"examples/{folder} is stale; run scripts/{script}\n{proc.stderr}"


def test_the_quickstart_data_is_what_its_script_writes() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart" / "make_data.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_malicious_example_is_flagged_and_no_benign_one() -> None:
    report = scan_path(EXAMPLES)
    flagged = {
        Path(f.location.path).relative_to(EXAMPLES).parts[0:2] for f in report.at_or_above(Severity.MEDIUM)
    }
    malicious = {p.relative_to(EXAMPLES).parts for p in (EXAMPLES / "malicious").iterdir()}
    assert flagged == malicious
    assert report.exit_code(Severity.MEDIUM) == 1


def test_quick_start_scan_command_exits_1_with_a_report() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipewarden.cli", "scan", str(EXAMPLES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stderr
    assert "PW-SCAN-101" in proc.stdout
    assert "target(s)" in proc.stdout


def _readme_block(after: str) -> list[str]:
    """The commands of the first ```sh block after the line starting with `after`."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    opening = next(i for i in range(start, len(lines)) if lines[i].strip() == "```sh")
    commands = []
    for line in lines[opening + 1 :]:
        if line.strip() == "```":
            break
        commands.append(line.split("  #", 1)[0].strip())
    return [c for c in commands if c]


def test_readme_signing_and_store_commands_work_as_written(tmp_path: Path) -> None:
    import json
    import os
    import shlex
    import struct

    bert = tmp_path / "models" / "bert"
    bert.mkdir(parents=True)
    (bert / "config.json").write_text('{"hidden_size": 4}')
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    (bert / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    (tmp_path / "train.csv").write_text("x,y\n1,0\n")
    commands = _readme_block("Signing, and the encrypted store")
    assert commands[0] == "pipewarden init" and len(commands) == 9
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PIPEWARDEN_WORKSPACE", None)
    for command in commands:
        proc = subprocess.run(
            shlex.split(command), cwd=tmp_path, capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "deployed.safetensors").read_bytes() == (bert / "model.safetensors").read_bytes()


def test_readme_access_and_audit_commands_work_as_written(tmp_path: Path) -> None:
    """The README's identity block, run as written; the one interactive step (typing a TOTP code
    from an authenticator at the first login) is done the scripted way the login command offers."""
    import base64
    import os
    import re
    import shlex
    import time

    from pipewarden.identity import Totp

    commands = _readme_block("People, services and the audit trail")
    assert commands[0].startswith("pipewarden init --admin ada") and len(commands) == 9
    (tmp_path / "ada.pw").write_text("correct horse battery staple, 2026 edition\n")
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"))
    for name in ("PIPEWARDEN_WORKSPACE", "PIPEWARDEN_TOKEN", "PIPEWARDEN_DATABASE_URL"):
        env.pop(name, None)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            shlex.split(command), cwd=tmp_path, capture_output=True, text=True, env=env, check=False
        )

    outputs = {}
    for command in commands:
        proc = run(command)
        if command.startswith("pipewarden login") and proc.returncode != 0:
            # Not a terminal: login printed the new secret once and asks to be run again with a code.
            secret = re.search(r"secret \(to type in\): ([A-Z2-7]+)", proc.stderr)
            assert secret, proc.stderr
            code = Totp(base64.b32decode(secret.group(1) + "=" * (-len(secret.group(1)) % 8))).code_at(
                time.time()
            )
            proc = run(f"{command} --totp-code {code}")
        expected = 1 if "denied (exit 1)" in _readme_comment(command) else 0
        assert proc.returncode == expected, f"{command}\n{proc.stdout}\n{proc.stderr}"
        outputs[command] = proc.stdout
    tail = outputs["pipewarden audit tail -n 5"]
    assert "token.create" in tail and "user.create" in tail


def _readme_comment(command: str) -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    line = next((line for line in lines if line.split("  #", 1)[0].strip() == command), "")
    return line.split("  #", 1)[1] if "  #" in line else ""


def _run_readme_commands(commands: list[str], cwd: Path) -> dict[str, str]:
    """Run README commands as a user would (the installed `pipewarden` on PATH, no workspace set), each
    expected to exit as its comment says (1 when it says "exit 1"); returns each command's stdout."""
    import os
    import shlex

    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PIPEWARDEN_WORKSPACE", None)
    outputs = {}
    for command in commands:
        proc = subprocess.run(
            shlex.split(command), cwd=cwd, capture_output=True, text=True, env=env, check=False
        )
        expected = 1 if "exit 1" in _readme_comment(command) else 0
        assert proc.returncode == expected, f"{command}\n{proc.stdout}\n{proc.stderr}"
        outputs[command] = proc.stdout
    return outputs


def test_readme_data_commands_work_as_written(tmp_path: Path) -> None:
    import csv
    import shutil

    shutil.copytree(ROOT / "examples" / "data", tmp_path / "examples" / "data")
    commands = _readme_block("Data, before it trains a model")
    assert len(commands) == 3 and commands[0].startswith("pipewarden data profile")
    _run_readme_commands(commands, tmp_path)
    with (tmp_path / "rejected.csv").open(newline="") as fh:
        rejected = sorted(int(row["_pipewarden_row"]) for row in csv.DictReader(fh))
    assert rejected == [10, 40, 70, 100, 130, 160]  # the six rows scripts/make_data_examples.py spoils
    with (tmp_path / "suspects.csv").open(newline="") as fh:
        suspects = {int(row["_pipewarden_row"]) for row in csv.DictReader(fh)}
    assert set(range(600, 620)) <= suspects  # the 8 injected points and the 12 mislabelled copies


def test_readme_monitor_commands_work_as_written(tmp_path: Path) -> None:
    import json
    import shutil

    shutil.copytree(ROOT / "examples" / "monitor", tmp_path / "examples" / "monitor")
    commands = _readme_block("Watching it all")
    assert len(commands) == 2 and commands[0].startswith("pipewarden monitor replay")
    _run_readme_commands(commands, tmp_path)
    # The same replay as JSON (a command the README does not show, so expected to exit as the first did).
    replay = subprocess.run(
        [sys.executable, "-m", "pipewarden.cli", *commands[0].split()[1:], "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = sorted(f["rule_id"] for f in json.loads(replay)["findings"])
    assert found == ["PW-MON-101", "PW-MON-108", "PW-MON-110"]  # what the README's comment says


def test_readme_supply_chain_and_gate_commands_work_as_written(tmp_path: Path) -> None:
    """Run in a copy of the repository, since `sbom -o` writes into it and `ci` then gates what is there."""
    import json
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git",
            "venv",
            ".venv",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            ".work",
            "build",
            "dist",
            "*.egg-info",
        ),
    )
    commands = _readme_block("The supply chain and the CI gate")
    assert [c.split()[1] for c in commands] == ["deps", "secrets", "sbom", "ci"]
    _run_readme_commands(commands, copy)
    sbom = json.loads((copy / "sbom.cdx.json").read_text())
    assert sbom["specVersion"] == "1.6" and len(sbom["components"]) > 50
