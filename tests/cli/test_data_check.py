"""`pipewarden data profile` and `pipewarden data check` as a user runs them: the real command in a child
process. Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or input error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipewarden.workspace import Workspace
from tests.cli.clirun import run


@pytest.fixture
def work(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    n = 200
    train = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n).round(2),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "y": rng.choice([0, 1], n),
        }
    )
    train.to_csv(tmp_path / "train.csv", index=False)
    batch = train.head(20).astype(str)
    batch.loc[3, "city"] = '=HYPERLINK("http://evil")'  # formula injection (CWE-1236)
    batch.loc[5, "age"] = "400"  # out of range
    batch.to_csv(tmp_path / "batch.csv", index=False)
    train.head(20).to_csv(tmp_path / "clean.csv", index=False)
    return tmp_path


def test_profile_then_check_quarantines_the_bad_rows(work: Path) -> None:
    profiled = run("data", "profile", "train.csv", "-o", "contract.yaml", "--label", "y", cwd=work)
    assert profiled.returncode == 0, profiled.stderr
    text = (work / "contract.yaml").read_text()
    assert text.startswith("# pipewarden data contract") and "label: y" in text
    checked = run(
        "data", "check", "batch.csv", "--contract", "contract.yaml", "--quarantine", "q.csv",
        "--output", "ok.csv", "--format", "json", cwd=work,
    )  # fmt: skip
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    rows = {(f["rule_id"], f["location"]["row"]) for f in report["findings"]}
    assert {("PW-DATA-120", 3), ("PW-DATA-105", 5)} <= rows
    summary = next(f for f in report["findings"] if f["rule_id"] == "PW-DATA-100")
    assert summary["evidence"]["rows"] == 20 and summary["evidence"]["quarantined"] == 2
    quarantined = pd.read_csv(work / "q.csv")
    assert quarantined["_pipewarden_row"].tolist() == [3, 5]
    assert len(pd.read_csv(work / "ok.csv")) == 18


def test_clean_data_exits_zero_and_fail_on_sets_the_threshold(work: Path) -> None:
    assert run("data", "profile", "train.csv", "-o", "c.yaml", "--label", "y", cwd=work).returncode == 0
    clean = run("data", "check", "clean.csv", "-c", "c.yaml", cwd=work)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert (
        run("data", "check", "batch.csv", "-c", "c.yaml", "--fail-on", "critical", cwd=work).returncode == 0
    )
    # Environment fallbacks, like every command: the contract and the threshold.
    env = {"PIPEWARDEN_CONTRACT": "c.yaml", "PIPEWARDEN_FAIL_ON": "high"}
    assert run("data", "check", "batch.csv", cwd=work, env=env).returncode == 1


def test_reports_are_written_atomically_in_every_format(work: Path) -> None:
    assert run("data", "profile", "train.csv", "-o", "c.yaml", cwd=work).returncode == 0
    for fmt in ("text", "json", "sarif", "html"):
        done = run("data", "check", "batch.csv", "-c", "c.yaml", "-f", fmt, "-o", f"report.{fmt}", cwd=work)
        assert done.returncode == 1 and done.stdout == ""
        assert "PW-DATA-120" in (work / f"report.{fmt}").read_text()
    assert not list(work.glob(".*pipewarden-tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "check", "missing.csv", "-c", "c.yaml"), "missing.csv: no such file"),
        (("data", "check", "batch.csv", "-c", "nope.yaml"), "nope.yaml: no such contract file"),
        (("data", "check", "batch.csv", "-c", "bad.yaml"), "bad.yaml: line 3: column 'a': unknown key 'mni'"),
        (("data", "profile", "train.csv", "-o", "x.yaml", "--label", "target"), "no label column 'target'"),
        (("data", "profile", "empty.csv", "-o", "x.yaml"), "empty.csv: empty file"),
        (("data", "check", "batch.csv", "-c", "c.yaml", "--fail-on", "severe"), "'severe': not a severity"),
    ],
)
def test_usage_and_input_errors_exit_two_naming_the_input(
    work: Path, args: tuple[str, ...], message: str
) -> None:
    assert run("data", "profile", "train.csv", "-o", "c.yaml", cwd=work).returncode == 0
    (work / "bad.yaml").write_text("columns:\n  a:\n    mni: 1\n    dtype: integer\n")
    (work / "empty.csv").write_text("")
    result = run(*args, cwd=work)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())


def test_inside_a_workspace_profile_and_check_are_recorded(work: Path) -> None:
    ws = work / "ws"
    assert run("init", "-w", str(ws), cwd=work).returncode == 0
    env = {"PIPEWARDEN_WORKSPACE": str(ws), "XDG_CONFIG_HOME": str(work / "config")}
    assert (
        run("data", "profile", "train.csv", "-o", "c.yaml", "--label", "y", cwd=work, env=env).returncode == 0
    )
    assert run("data", "check", "batch.csv", "-c", "c.yaml", cwd=work, env=env).returncode == 1
    events = [r.event for r in Workspace.open(ws).audit_log().records() if r.event.action == "data.check"]
    assert [(e.outcome, e.attributes["mode"]) for e in events] == [
        ("allowed", "profile"),
        ("allowed", "check"),
    ]
    assert events[1].attributes["quarantined"] == 2 and events[1].attributes["blocked"] is True
    assert events[1].resource.startswith("data:") and events[1].resource.endswith("batch.csv")
