"""`pipewarden secrets` baselines: a baseline accepts what a person accepted, and no more, whatever part
of the tree a run scans; updating it from one folder leaves the rest alone.

Every secret is made up at run time (see `secretfixtures`); none is valid anywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipewarden.errors import ConfigError
from pipewarden.findings import Report, Severity
from pipewarden.supply import SECRETS_BASELINE_NAME, find_secrets, write_secrets_baseline
from tests.cli.clirun import run
from tests.supply.secretfixtures import (
    FAKE,
    places,
    problems_of,
    secrets_of,
    summary_of,
    write,
    write_planted,
)


def stale_files(report: Report) -> list[str]:
    return sorted(str(f.evidence["file"]) for f in report.findings if f.rule_id == "PW-SEC-103")


def entries(baseline: Path) -> dict[str, str]:
    """file -> reason of each entry of a baseline."""
    return {e["file"]: e["reason"] for e in json.loads(baseline.read_text(encoding="utf-8"))["accepted"]}


def test_baseline_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_planted(root)
    baseline = tmp_path / "accepted.json"
    assert write_secrets_baseline(root, baseline) == 13
    text = baseline.read_text(encoding="utf-8")
    for value in FAKE.values():
        assert value not in text
    doc = json.loads(text)
    assert doc["format"] == "pipewarden-secrets-baseline/1"
    assert set(doc["accepted"][0]) == {"file", "type", "fingerprint", "reason"}

    accepted = find_secrets(root, baseline=baseline)
    assert secrets_of(accepted) == []
    assert summary_of(accepted).evidence["accepted"] == 13
    assert accepted.exit_code(Severity.LOW) == 0

    # Lines move: still accepted. A new secret: reported. A secret removed: its entry is stale.
    storage = root / "app/storage.py"
    storage.write_text("# moved down\n\n\n" + storage.read_text(encoding="utf-8"), encoding="utf-8")
    write(root, "app/new.py", f'API_KEY = "{FAKE.error_password}x"\n')
    (root / "settings.toml").write_text('[database]\nuser = "svc"\n', encoding="utf-8")
    later = find_secrets(root, baseline=baseline)
    # The baseline's folder holds the project: files are named from there, as its entries name them.
    assert places(later) == {("project/app/new.py", "line 1", "Secret Keyword")}
    (stale,) = [f for f in later.findings if f.rule_id == "PW-SEC-103"]
    assert stale.severity is Severity.LOW and stale.evidence["file"] == "project/settings.toml"
    assert stale.location.path == str(baseline)
    assert summary_of(later).evidence["accepted"] == 12


def test_an_entry_for_a_file_not_scanned_is_not_called_stale(tmp_path: Path) -> None:
    write(tmp_path, "a.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    baseline = tmp_path / SECRETS_BASELINE_NAME
    write_secrets_baseline(tmp_path, baseline)
    report = find_secrets(tmp_path, baseline=baseline, exclude=["a.py"])
    assert [f.rule_id for f in report.findings] == ["PW-SEC-200"]


def test_updating_the_baseline_keeps_reasons_and_drops_what_is_gone(tmp_path: Path) -> None:
    write(tmp_path, "a.py", f'DB_PASSWORD = "{FAKE.db_password}"\nAPI_KEY = "{FAKE.env_secret}"\n')
    baseline = tmp_path / SECRETS_BASELINE_NAME
    write_secrets_baseline(tmp_path, baseline)
    doc = json.loads(baseline.read_text(encoding="utf-8"))
    for entry in doc["accepted"]:
        entry["reason"] = "rotated 2026-01; a test fixture now"
    baseline.write_text(json.dumps(doc), encoding="utf-8")
    write(tmp_path, "a.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    assert write_secrets_baseline(tmp_path, baseline) == 1
    (entry,) = json.loads(baseline.read_text(encoding="utf-8"))["accepted"]
    assert entry["reason"] == "rotated 2026-01; a test fixture now"
    assert (baseline.stat().st_mode & 0o777) == 0o644


def _baseline_doc(entry: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    accepted = {"file": "a.py", "type": "Secret Keyword", "fingerprint": "0" * 32, **(entry or {})}
    doc = {"format": "pipewarden-secrets-baseline/1", "fingerprint": "pbkdf2-sha256/100000/128"}
    return {**doc, "accepted": [accepted], **top}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "invalid JSON at line 1"),
        (json.dumps({"version": "1.5.0", "plugins_used": [], "results": {}}), "a detect-secrets baseline"),
        (json.dumps(_baseline_doc(format="other/1")), "format is not"),
        (json.dumps(_baseline_doc(fingerprint="sha1")), "fingerprints made with 'sha1'"),
        (json.dumps(_baseline_doc(accepted={})), "'accepted' must be a list"),
        (json.dumps(_baseline_doc({"fingerprint": "ABC"})), "entry #1: fingerprint must be 32"),
        (json.dumps(_baseline_doc({"value": "x"})), "entry #1: unknown key 'value'"),
        (json.dumps(_baseline_doc({"file": ""})), "entry #1: needs a file and a type"),
    ],
)
def test_a_malformed_baseline_is_a_usage_error_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    baseline = tmp_path / "bl.json"
    baseline.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(problem)) as caught:
        find_secrets(tmp_path, baseline=baseline)
    assert str(caught.value).startswith(str(baseline))
    # Updating does not overwrite what a person wrote and cannot be read.
    with pytest.raises(ConfigError):
        write_secrets_baseline(tmp_path, baseline)
    assert baseline.read_text(encoding="utf-8") == content


def test_a_baseline_named_but_missing_is_an_error_not_an_empty_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such secrets baseline"):
        find_secrets(tmp_path, baseline=tmp_path / "typo.json")


def test_cli_baseline_workflow_and_the_default_baseline(tmp_path: Path) -> None:
    write_planted(tmp_path)
    found = run("secrets", "--format", "json", cwd=tmp_path)
    assert found.returncode == 1 and len(json.loads(found.stdout)["findings"]) == 14
    updated = run("secrets", "--update-baseline", cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    assert f"{SECRETS_BASELINE_NAME}: 13 accepted secret(s) written" in updated.stderr
    # The baseline in the folder is used without being named, and is itself scanned (it holds no secret).
    after = run("secrets", "--format", "json", cwd=tmp_path)
    assert after.returncode == 0, after.stdout
    (summary,) = json.loads(after.stdout)["findings"]
    assert summary["evidence"]["accepted"] == 13 and summary["evidence"]["files"] == 8


def test_cli_malformed_baseline_exits_2_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "x = 1\n")
    write(tmp_path, "old.baseline", json.dumps({"version": "1.5.0", "plugins_used": [], "results": {}}))
    result = run("secrets", ".", "--baseline", "old.baseline", cwd=tmp_path)
    assert result.returncode == 2
    assert "old.baseline: not a secrets baseline" in result.stderr and "Traceback" not in result.stderr


# -- a baseline for the whole project, used from any part of it ------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a secret in two folders, both accepted in the baseline at its root with reasons."""
    write(tmp_path, "src/a.py", f'aws = "{FAKE.aws_key_id}"\n')
    write(tmp_path, "other/b.py", f'tok = "{FAKE.github_token}"\n')
    baseline = tmp_path / SECRETS_BASELINE_NAME
    assert write_secrets_baseline(tmp_path, baseline) == 2
    doc = json.loads(baseline.read_text(encoding="utf-8"))
    for entry in doc["accepted"]:
        entry["reason"] = f"fixture in {entry['file']}"
    baseline.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return tmp_path


def test_a_scan_of_one_file_or_folder_uses_the_projects_baseline(project: Path) -> None:
    baseline = project / SECRETS_BASELINE_NAME
    assert entries(baseline) == {"other/b.py": "fixture in other/b.py", "src/a.py": "fixture in src/a.py"}
    for part in (project / "src" / "a.py", project / "src"):
        report = find_secrets(part, baseline=baseline)
        assert secrets_of(report) == [], part
        assert summary_of(report).evidence["accepted"] == 1
        # other/b.py was not looked at: its entry is not stale.
        assert stale_files(report) == [] and summary_of(report).evidence["stale"] == 0
    # A new secret is named from the baseline's folder, as the entries are.
    write(project, "src/c.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    assert places(find_secrets(project / "src", baseline=baseline)) == {
        ("src/c.py", "line 1", "Secret Keyword")
    }
    assert places(find_secrets(project / "src" / "c.py", baseline=baseline)) == {
        ("src/c.py", "line 1", "Secret Keyword")
    }


def test_only_entries_the_scan_looked_at_can_be_stale(project: Path) -> None:
    baseline = project / SECRETS_BASELINE_NAME
    write(project, "src/a.py", "aws = None\n")  # the accepted key is removed
    (project / "other" / "b.py").unlink()  # and the other file is gone
    assert stale_files(find_secrets(project / "src", baseline=baseline)) == ["src/a.py"]
    assert stale_files(find_secrets(project / "src" / "a.py", baseline=baseline)) == ["src/a.py"]
    assert stale_files(find_secrets(project, baseline=baseline)) == ["other/b.py", "src/a.py"]
    # A gone file the scan would not have read (excluded) is not called stale either.
    assert stale_files(find_secrets(project, baseline=baseline, exclude=["other"])) == ["src/a.py"]


def test_updating_from_a_folder_keeps_the_entries_of_the_rest(project: Path) -> None:
    baseline = project / SECRETS_BASELINE_NAME
    write(project, "src/c.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    assert write_secrets_baseline(project / "src", baseline) == 3
    assert entries(baseline) == {
        "other/b.py": "fixture in other/b.py",
        "src/a.py": "fixture in src/a.py",
        "src/c.py": "",
    }
    # Gone from the folder updated: dropped; the rest of the project: kept as it was.
    write(project, "src/a.py", "aws = None\n")
    assert write_secrets_baseline(project / "src", baseline) == 2
    assert entries(baseline) == {"other/b.py": "fixture in other/b.py", "src/c.py": ""}
    # An excluded file is not looked at: its entry is kept too.
    assert write_secrets_baseline(project, baseline, exclude=["src/c.py"]) == 2
    assert entries(baseline) == {"other/b.py": "fixture in other/b.py", "src/c.py": ""}


def test_a_baseline_outside_the_scanned_folder_names_files_from_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "project/a.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    baseline = tmp_path / "ci" / "secrets.json"
    write_secrets_baseline(tmp_path / "project", baseline)
    assert entries(baseline) == {"a.py": ""}
    assert secrets_of(find_secrets(tmp_path / "project", baseline=baseline)) == []


def test_entries_in_a_file_read_only_in_part_are_neither_stale_nor_dropped(tmp_path: Path) -> None:
    vectors = [hashlib.sha256(f"vector {i}".encode()).hexdigest() for i in range(6)]
    write(tmp_path, "vectors.py", "".join(f'"{v}",\n' for v in vectors))
    baseline = tmp_path / SECRETS_BASELINE_NAME
    assert write_secrets_baseline(tmp_path, baseline) == 6
    # With room for fewer candidates, the last values are not checked: their entries are not stale.
    report = find_secrets(tmp_path, baseline=baseline, max_candidates=4)
    assert secrets_of(report) == [] and stale_files(report) == []
    assert [p.location.path for p in problems_of(report)] == ["vectors.py"]
    assert write_secrets_baseline(tmp_path, baseline, max_candidates=4) == 6


def test_cli_a_file_in_a_folder_against_the_projects_baseline(project: Path) -> None:
    one = run("secrets", "src/a.py", "-b", SECRETS_BASELINE_NAME, "--format", "json", cwd=project)
    assert one.returncode == 0, one.stdout
    (summary,) = json.loads(one.stdout)["findings"]
    assert (summary["evidence"]["accepted"], summary["evidence"]["stale"]) == (1, 0)
    write(project, "src/c.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    updated = run("secrets", "src", "--update-baseline", "-b", SECRETS_BASELINE_NAME, cwd=project)
    assert updated.returncode == 0, updated.stderr
    assert f"{SECRETS_BASELINE_NAME}: 3 accepted secret(s) written" in updated.stderr
    assert entries(project / SECRETS_BASELINE_NAME)["other/b.py"] == "fixture in other/b.py"
