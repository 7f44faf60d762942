"""The project practises what it preaches: lint and strict typing stay clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None and not (Path(sys.executable).parent / name).exists():
        pytest.skip(f"{name} is not installed")
    exe = Path(sys.executable).parent / name
    return [str(exe) if exe.exists() else name]


def test_ruff_check_is_clean() -> None:
    folders = [name for name in ("src", "tests", "scripts", "benchmarks") if (ROOT / name).is_dir()]
    proc = subprocess.run(
        [*_tool("ruff"), "check", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
