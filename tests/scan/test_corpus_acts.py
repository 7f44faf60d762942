"""The malicious corpus is real: loaded the ordinary way, each file runs its payload.

Each payload only prints a marker (`echo PWNED-...` or `print`), so running
it in a child process is harmless; the test proves that the scanner's
findings are about files that really act, not about look-alikes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scan._asm import MARKER
from tests.scan.corpus import Case, available, malicious_cases

_ACTING = [c for c in malicious_cases() if c.load is not None]


@pytest.mark.parametrize("case", _ACTING, ids=lambda c: c.name)
def test_payload_runs_when_loaded(case: Case, tmp_path: Path) -> None:
    modules = case.needs + tuple(
        m
        for m in ("torch", "joblib", "numpy")
        if f"import {m}" in (case.load or "") or f"{m}," in (case.load or "")
    )
    if not available(Case(case.name, "", True, case.build, None, modules)):
        pytest.skip(f"needs {', '.join(modules)}")
    path = case.build(tmp_path)
    assert case.load is not None
    proc = subprocess.run(
        [sys.executable, "-c", case.load, str(path)],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert MARKER.encode() in proc.stdout, (
        f"{case.name}: the ordinary load did not run the payload\n"
        f"stdout: {proc.stdout[-500:]!r}\nstderr: {proc.stderr[-1500:]!r}"
    )
