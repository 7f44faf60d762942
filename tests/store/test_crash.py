"""A writer killed with SIGKILL at any point of `put` leaves no partial version, on both backends.

Each run kills a real writer process, either at a chosen step (inside the
body, around every object it writes) or after a random delay; afterwards the
store verifies clean and shows either no new version or a complete one.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipewarden.crypto import KeyRing, SigningKey, TrustedKeys
from pipewarden.store import ArtifactStore, Backend, LocalBackend, S3Backend

ROOT = Path(__file__).resolve().parents[2]
# Twelve 1 MiB chunks; on S3 (parts of 5 MiB in the writer) a multipart upload of three parts.
SIZE = 11 * (1 << 20) + 12345


@pytest.fixture
def setup(backend: Backend, ring_path: Path, tmp_path: Path) -> tuple[str, Path, Path]:
    key = SigningKey.generate()
    key_file = tmp_path / "writer.key"
    key.save(key_file)
    source = tmp_path / "weights.csv"
    # Fixed bytes: the same every run (random bytes could, once in thousands of runs, begin
    # with a model format's magic number and be refused by the scan).
    source.write_bytes(random.Random(SIZE).randbytes(SIZE))  # noqa: S311  # test data, not a key
    if isinstance(backend, LocalBackend):
        spec = f"local:{backend.root}"
    else:
        assert isinstance(backend, S3Backend)
        spec = f"s3:{backend.client.meta.endpoint_url}|{backend.bucket}|{backend.prefix}"
    return spec, key_file, source


def writer(spec: str, ring: Path, key_file: Path, source: Path, kill_at: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.crash_writer",
            spec,
            str(ring),
            str(key_file),
            str(source),
            kill_at,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reader(backend: Backend, ring: Path, key_file: Path) -> ArtifactStore:
    key = SigningKey.load(key_file)
    return ArtifactStore(
        backend,
        keyring=KeyRing.from_file(ring),
        signing_key=key,
        trusted=TrustedKeys([key.public], source="t"),
    )


def check_after_crash(store: ArtifactStore, source: Path, tmp_path: Path) -> list[int]:
    result = store.verify()
    assert result.ok, result.failures
    versions = store.versions("crash/model")
    for v in versions:
        out = tmp_path / f"restored-{v}"
        store.get(f"crash/model@{v}", out)
        assert out.read_bytes() == source.read_bytes()
    return versions


KILL_POINTS = [
    "body:0",
    "body:100",
    "body:1048600",
    f"body:{SIZE // 2}",  # on S3, after the first part was uploaded
    f"body:{SIZE - 5}",
    f"body:{SIZE}",
    "before-commit",
    "before-move",
    "after-move",
    "before-put:1",
    "after-put:1",
    "before-put:2",
]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_writer_killed_before_the_manifest_leaves_no_version(
    backend: Backend, ring_path: Path, setup: tuple[str, Path, Path], tmp_path: Path, kill_at: str
) -> None:
    spec, key_file, source = setup
    proc = writer(spec, ring_path, key_file, source, kill_at)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    store = reader(backend, ring_path, key_file)
    assert check_after_crash(store, source, tmp_path) == []
    # The store stays usable: the next put takes version 1.
    assert store.put(source, name="crash/model", actor="retry").version == 1
    assert check_after_crash(store, source, tmp_path) == [1]


def test_a_writer_killed_just_after_the_manifest_leaves_a_complete_version(
    backend: Backend, ring_path: Path, setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    spec, key_file, source = setup
    proc = writer(spec, ring_path, key_file, source, "after-put:2")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert check_after_crash(reader(backend, ring_path, key_file), source, tmp_path) == [1]


def test_writers_killed_after_random_delays(
    backend: Backend, ring_path: Path, setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    spec, key_file, source = setup
    # How long an uninterrupted put takes here, from "ready" to exit.
    proc = writer(spec, ring_path, key_file, source, "never")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    proc.wait(timeout=120)
    duration = time.monotonic() - start
    assert proc.returncode == 0
    rng = random.Random(20261126)  # noqa: S311  # reproducible kill times, not cryptography
    store = reader(backend, ring_path, key_file)
    expected = 1
    for _ in range(6):
        proc = writer(spec, ring_path, key_file, source, "never")
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        versions = check_after_crash(store, source, tmp_path)
        # Each run either finished (one more version) or left nothing behind.
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) in (expected, expected + 1)
        expected = len(versions)
