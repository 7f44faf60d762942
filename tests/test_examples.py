"""The shipped examples are current and behave as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipewarden.findings import Severity
from pipewarden.scan import scan_path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"


def test_examples_are_what_the_script_writes() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_examples.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"examples/models is stale; run scripts/make_examples.py\n{proc.stderr}"


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
