"""Pipeline files: what is accepted, and a clear error naming the field for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.pipeline import load_pipeline

STAGES = """
def work(ctx):
    pass
"""

GOOD = """
version: 1
pipeline: demo
project: fraud
workspace: {path: ws, create: true}
accounts:
  svc-a: {grants: [{role: pipeline-service, scope: "fraud/*"}]}
stages:
  - name: b
    run: stages.py:work
    account: svc-a
    inputs: {data: fraud/data/raw}
    outputs: {model: fraud/models/m}
    gates:
      - {type: scan, on: model, fail_on: high}
  - name: a
    run: stages.py:work
    account: svc-a
    inputs: {raw: {file: raw.csv}}
    outputs: {data: fraud/data/raw}
    gates:
      - type: contract
        on: data
        contract: c.yaml
        policy: quarantine
        expect: {catches: [3, 1, 3]}
  - name: drill
    run: stages.py:work
    account: svc-a
    needs: [b]
    outputs: {model: fraud/models/m}
    expect: blocked
expect: {alerts: [PW-MON-110]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "stages.py").write_text(STAGES)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_a_pipeline_file_is_read_and_ordered_by_what_each_stage_reads(tmp_path: Path) -> None:
    spec = load_pipeline(_write(tmp_path, GOOD))
    assert spec.name == "demo" and spec.project == "fraud" and spec.create_workspace
    assert spec.workspace == (tmp_path / "ws").resolve()
    # b reads what a writes, so a runs first, though declared second; the drill waits for b.
    assert [s.name for s in spec.order()] == ["a", "b", "drill"]
    gate = spec.stages[1].gates[0]
    assert gate.type == "contract" and gate.on == "data" and gate.policy == "quarantine"
    assert gate.catches == (1, 3) and gate.settings["contract"] == "c.yaml"
    assert spec.stages[0].gates[0].fail_on is Severity.HIGH
    assert spec.producers() == {"fraud/models/m": "b", "fraud/data/raw": "a"}  # the drill writes nothing real
    assert spec.expect_alerts == ("PW-MON-110",)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("version: 1", "version: 2"), "version"),
        (("type: scan", "type: virus"), "gates[0].type"),
        (("{type: scan, on: model", "{type: scan, on: weights"), "gates[0].on"),
        (("policy: quarantine", "policy: maybe"), "gates[0].policy"),
        (("fail_on: high", "fail_on: dire"), "gates[0].fail_on"),
        (("catches: [3, 1, 3]", "catches: [-1]"), "expect.catches"),
        (("catches: [3, 1, 3]", "catches: rows.json#x"), "rows.json"),
        (
            (
                "run: stages.py:work\n    account: svc-a\n    inputs: {data",
                "run: nope.py:work\n    account: svc-a\n    inputs: {data",
            ),
            "nope.py",
        ),
        (
            (
                "run: stages.py:work\n    account: svc-a\n    inputs: {data",
                "run: stages.py:missing\n    account: svc-a\n    inputs: {data",
            ),
            "no function missing",
        ),
        (("account: svc-a\n    inputs: {raw", "account: svc-z\n    inputs: {raw"), "svc-z"),
        (("needs: [b]", "needs: [zz]"), "zz"),
        (("outputs: {data: fraud/data/raw}", "outputs: {data: fraud/models/m}"), "written by stages"),
        (("expect: blocked", "expect: skipped"), "expect"),
        (('scope: "fraud/*"}]}', 'scope: "fraud/*"}], colour: red}'), "colour"),
        (
            ("outputs: {model: fraud/models/m}\n    gates", "outputs: {model: ../x}\n    gates"),
            "not a valid artifact name",
        ),
        (("{type: scan, on: model, fail_on: high}", "{type: scan, on: model, polcy: warn}"), "polcy"),
        (("contract: c.yaml", "contract: c.yaml\n        lable: churn"), "lable"),
        (("role: pipeline-service", "role: admin"), "administrators"),
        (("  svc-a: {grants", "  Svc A: {grants"), "Svc A"),
        (("inputs: {raw: {file: raw.csv}}", "inputs: {../up: {file: raw.csv}}"), "../up"),
        (("inputs: {data: fraud/data/raw}", "inputs: {data: fraud/data/raw@1}"), "pins fraud/data/raw@1"),
        (("{type: scan, on: model, fail_on: high}", "{type: signature, on: model}"), "signers"),
    ],
)
def test_a_bad_pipeline_file_is_refused_naming_the_field(
    tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError, match=None) as caught:
        load_pipeline(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert named in str(caught.value)
    assert str(tmp_path / "pipeline.yaml") in str(caught.value)


def test_a_cycle_is_refused_before_anything_runs(tmp_path: Path) -> None:
    text = GOOD.replace("outputs: {data: fraud/data/raw}", "outputs: {data: fraud/data/raw}\n    needs: [b]")
    with pytest.raises(ConfigError, match="wait for each other"):
        load_pipeline(_write(tmp_path, text))


def test_unreadable_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_pipeline(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_pipeline(_write(tmp_path, "version: 1\nstages: [\n"))
