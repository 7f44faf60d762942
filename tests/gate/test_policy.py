"""The gate's policy file: defaults, every key read, and every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.gate import GatePolicy


def load(text: str) -> GatePolicy:
    return GatePolicy.from_yaml(text, source="ci.yaml")


def test_the_default_policy_runs_scan_deps_and_secrets_and_fails_on_high() -> None:
    policy = load("version: 1\n")
    assert policy.scan.enabled and policy.deps.enabled and policy.secrets.enabled
    assert policy.data == ()
    assert policy.scan.fail_on is policy.deps.fail_on is policy.secrets.fail_on is Severity.HIGH
    assert policy.deps.db is None and policy.deps.osv_url.startswith("https://")
    assert GatePolicy().scan == policy.scan


def test_every_key_is_read_and_thresholds_inherit_the_top_level_one() -> None:
    policy = load(
        """
version: 1
fail_on: low
exclude: [build]
scan: {paths: [models], exclude: ["models/fixtures/**"], allow: allow.yaml, fail_on: critical}
deps: {paths: [requirements.lock], db: osv.zip, ignores: policy.toml}
secrets: {baseline: .secrets.json, exclude: ["docs/**"]}
data:
  - {name: train, data: d/train.csv, contract: d/train.yaml, fail_on: high}
  - {data: d/batch.csv, contract: d/train.yaml}
posture: {workspace: .pipewarden, osv_db: osv.zip, url: "https://ml.internal:8443", probe_sinks: false}
"""
    )
    assert policy.exclude == ("build",)
    assert policy.scan.paths == ("models",) and policy.scan.allow == "allow.yaml"
    assert policy.scan.fail_on is Severity.CRITICAL
    assert policy.deps.fail_on is Severity.LOW and policy.deps.db == "osv.zip"
    assert policy.secrets.baseline == ".secrets.json" and policy.secrets.exclude == ("docs/**",)
    assert [(d.name, d.fail_on) for d in policy.data] == [
        ("train", Severity.HIGH),
        ("d/batch.csv", Severity.LOW),
    ]
    assert policy.posture.workspace == ".pipewarden" and policy.posture.probe_sinks is False


def test_a_check_can_be_switched_off() -> None:
    policy = load("version: 1\nscan: false\nsecrets: false\nposture: false\n")
    assert not policy.scan.enabled and not policy.secrets.enabled and not policy.posture.enabled
    assert policy.deps.enabled


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("fail_on: high\n", "version"),
        ("version: 2\n", "version"),
        ("version: 1\nfail_onn: high\n", "fail_onn"),
        ("version: 1\nscan: {fail_onn: high}\n", "scan.fail_onn"),
        ("version: 1\nscan: {fail_on: severe}\n", "scan.fail_on"),
        ("version: 1\nfail_on: info\n", "fail_on"),
        ("version: 1\ndeps: {db: a.zip, osv_url: 'https://x'}\n", "deps"),
        ("version: 1\ndeps: {paths: [1]}\n", "deps.paths"),
        ("version: 1\nsecrets: [x]\n", "secrets"),
        ("version: 1\ndata: {data: a.csv}\n", "data"),
        ("version: 1\ndata: [{data: a.csv}]\n", "data[0]"),
        ("version: 1\ndata: [{data: a.csv, contract: c.yaml, extra: 1}]\n", "data[0].extra"),
        ("version: 1\ndata: [{data: a, contract: c}, {data: a, contract: d}]\n", "data[1].name"),
        ("version: 1\nposture: {probe_sinks: maybe}\n", "posture.probe_sinks"),
        ("- just a list\n", "mapping"),
        ("version: 1\nscan: {paths: [a\n", "line"),
    ],
)
def test_a_mistake_is_an_error_naming_the_file_and_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value).startswith("ci.yaml:")
    assert names in str(caught.value)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such policy file"):
        GatePolicy.load(tmp_path / "nope.yaml")
