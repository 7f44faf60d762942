"""`pipewarden secrets` fails closed and stays bounded: a file it cannot read, or read whole (over the size
limit, more candidates than are fingerprinted), is a finding, never a silent skip; a notebook is held to
the limit by its text, not its images.

Every secret is made up at run time (see `secretfixtures`); none is valid anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.supply import find_secrets
from tests.supply.secretfixtures import (
    FAKE,
    notebook,
    places,
    problems_of,
    secrets_of,
    summary_of,
    write,
)

# -- failing closed ---------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_a_finding_not_a_silent_skip(tmp_path: Path) -> None:
    write(tmp_path, "big.csv", "x,y\n" * 100)
    write(tmp_path, "small.py", "x = 1\n")
    (tmp_path / "weights.pt").write_bytes(b"\x80\x02" + b"\x00" * 500)  # big, but binary: counted only
    report = find_secrets(tmp_path, max_bytes=100)
    assert summary_of(report).evidence["skipped"] == {"binary": 1}
    (problem,) = problems_of(report)
    # Medium, as any file left unread: the gate fails at medium, so it cannot pass unseen.
    assert problem.location.path == "big.csv" and problem.severity is Severity.MEDIUM
    assert "limit" in problem.message


def test_a_notebook_is_held_to_the_limit_by_its_text_not_its_images(tmp_path: Path) -> None:
    image = base64.b64encode(random.Random(7).randbytes(60_000)).decode()  # noqa: S311  # reproducible
    cell = {
        "cell_type": "code",
        "metadata": {},
        "source": [f'aws = "{FAKE.notebook_key}"\n'],
        "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/png": image}}],
    }
    write(tmp_path, "plots.ipynb", notebook([cell]))
    assert (tmp_path / "plots.ipynb").stat().st_size > 50_000
    report = find_secrets(tmp_path, max_bytes=20_000)
    assert places(report) == {("plots.ipynb", "cell 1 line 1", "AWS Access Key")}
    assert problems_of(report) == []
    # Text over the limit is not scanned, and says so at medium.
    text = {"output_type": "stream", "name": "stdout", "text": ["x" * 100 + "\n"] * 300}
    write(tmp_path, "plots.ipynb", notebook([{**cell, "outputs": [text]}]))
    report = find_secrets(tmp_path, max_bytes=20_000)
    (problem,) = problems_of(report)
    assert problem.severity is Severity.MEDIUM and "images are not counted" in problem.message
    assert secrets_of(report) == [] and summary_of(report).evidence["files"] == 0


def test_a_notebook_over_the_notebook_limit_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipewarden.supply import _secretscan

    monkeypatch.setattr(_secretscan, "NOTEBOOK_MAX_BYTES", 30_000)
    image = base64.b64encode(random.Random(7).randbytes(60_000)).decode()  # noqa: S311  # reproducible
    output = {"output_type": "display_data", "metadata": {}, "data": {"image/png": image}}
    cell = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"], "outputs": [output]}
    write(tmp_path, "huge.ipynb", notebook([cell]))
    (problem,) = problems_of(find_secrets(tmp_path, max_bytes=1_000))
    assert problem.severity is Severity.MEDIUM and "30000-byte notebook limit" in problem.message


def test_a_damaged_notebook_is_reported_and_still_scanned_as_text(tmp_path: Path) -> None:
    text = notebook(
        [{"cell_type": "code", "source": [f'DB_PASSWORD = "{FAKE.db_password}"\n'], "outputs": []}]
    )
    write(tmp_path, "broken.ipynb", text[: -len(text) // 3])  # cut short: not JSON any more
    report = find_secrets(tmp_path)
    (problem,) = [f for f in report.findings if f.rule_id == "PW-SEC-102"]
    assert problem.severity is Severity.MEDIUM and "not a readable notebook" in problem.message
    assert [f.location.path for f in secrets_of(report)] == ["broken.ipynb"]


def test_binary_files_are_skipped_in_a_folder_and_reported_when_named(tmp_path: Path) -> None:
    blob = tmp_path / "weights.bin2"
    blob.write_bytes(b"\x00\x01" + f'password = "{FAKE.db_password}"'.encode())
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n")
    assert summary_of(find_secrets(tmp_path)).evidence["skipped"] == {"binary": 2}
    named = find_secrets(blob)
    assert [f.rule_id for f in named.findings] == ["PW-SEC-102", "PW-SEC-200"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_a_folder_that_cannot_be_read_is_a_finding(tmp_path: Path) -> None:
    write(tmp_path, "locked/a.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    (tmp_path / "locked").chmod(0)
    try:
        report = find_secrets(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    (problem,) = [f for f in report.findings if f.rule_id == "PW-SEC-102"]
    assert problem.location.path == "locked" and problem.severity is Severity.MEDIUM


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing: no such file or folder"):
        find_secrets(tmp_path / "missing")


# -- candidates per file ---------------------------------------------------------------------------


def test_a_file_of_many_candidates_is_fingerprinted_up_to_a_cap_and_reported(tmp_path: Path) -> None:
    # Hex test vectors: each passes the filters, and each fingerprint costs tens of milliseconds.
    vectors = [hashlib.sha256(f"vector {i}".encode()).hexdigest() for i in range(8)]
    write(tmp_path, "vectors.py", "".join(f'"{v}",\n' for v in vectors))
    write(tmp_path, "few.py", "".join(f'"{v}",\n' for v in vectors[:5]))
    report = find_secrets(tmp_path, max_candidates=5)
    found = places(report)
    assert {w for p, w, _ in found if p == "vectors.py"} == {f"line {n}" for n in range(1, 6)}  # the first 5
    assert len([p for p, _, _ in found if p == "few.py"]) == 5
    (problem,) = problems_of(report)  # few.py, at the cap, is no problem
    assert problem.location.path == "vectors.py" and problem.severity is Severity.MEDIUM
    assert "8 distinct values" in problem.message and "--exclude" in problem.message
    assert summary_of(report).evidence["files"] == 2


def test_a_value_is_fingerprinted_once_per_type_in_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipewarden.supply import _secretengine

    computed: list[str] = []
    real = _secretengine.secret_fingerprint

    def counting(kind: str, value: str) -> str:
        computed.append(kind)
        return real(kind, value)

    monkeypatch.setattr(_secretengine, "secret_fingerprint", counting)
    for n in range(30):
        write(tmp_path, f"m{n}.py", f'DB_PASSWORD = "{FAKE.db_password}"\naws = "{FAKE.aws_key_id}"\n')
    assert len(secrets_of(find_secrets(tmp_path))) == 60
    assert sorted(computed) == ["AWS Access Key", "Secret Keyword"]
