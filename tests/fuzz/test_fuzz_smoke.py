"""A short run of the scanner's fuzz harness (tests/fuzz/fuzz_scan.py) in a subprocess.

The run lasts PIPEWARDEN_FUZZ_SECONDS (default 10) on the "all" target, whose
inputs reach every reader; the seeds of every target are replayed first. Longer
runs are for people and nightly jobs: see docs/fuzzing.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed"
)

HARNESS = Path(__file__).with_name("fuzz_scan.py")
SECONDS = max(1, int(os.environ.get("PIPEWARDEN_FUZZ_SECONDS", "10")))


def run_harness(tmp_path: Path, *args: str, timeout: float) -> tuple[int, str]:
    """Exit status and output (libFuzzer writes to stderr, atheris' tracebacks to stdout)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(HARNESS), *args, f"-artifact_prefix={tmp_path}/", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        cwd=tmp_path,
    )
    return proc.returncode, proc.stdout


def test_a_short_fuzzing_run_finds_no_failure(tmp_path: Path) -> None:
    status, output = run_harness(
        tmp_path, "--target=all", f"-max_total_time={SECONDS}", timeout=SECONDS + 120
    )
    assert status == 0, output[-4000:]
    assert "INITED" in output, output[-4000:]  # every target's seeds were replayed
    assert re.search(r"Done \d+ runs in", output), output[-4000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))


def test_a_failing_input_makes_the_harness_fail(tmp_path: Path) -> None:
    # The control: the self-test target raises on every input, and the run must say so.
    status, output = run_harness(tmp_path, "--target=selftest-crash", "-runs=10", timeout=120)
    assert status != 0
    assert "RuntimeError: self-test crash" in output
    assert list(tmp_path.glob("crash-*"))


def test_a_short_fuzzing_run_of_the_store_readers_finds_no_failure(tmp_path: Path) -> None:
    corpus = tmp_path / "store-corpus"
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS.with_name("fuzz_store.py")),
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SECONDS + 120,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"Done \d+ runs in", proc.stdout), proc.stdout[-4000:]
    assert len(list(corpus.glob("seed-*"))) >= 9  # real bodies, envelopes, statements and key slots
    assert not list(tmp_path.glob("crash-*"))
