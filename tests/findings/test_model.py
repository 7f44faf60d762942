"""The shared result model: Severity, Location, Finding and Report.

These are what every command's exit code and every report format are built
from, so each test pins a rule a user relies on: severities compare the way
their names say, a bad severity name is a configuration error that quotes the
input, reports come out in one stable order, and the exit code follows the
threshold exactly (DESIGN.md, "Exit codes for every command").
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden import __version__
from pipewarden.errors import ConfigError, PipewardenError
from pipewarden.findings import Finding, Location, Report, Severity
from tests.findings._make import make

LABELS = ["info", "low", "medium", "high", "critical"]


# -- Severity ---------------------------------------------------------------


def test_severities_order_from_info_to_critical() -> None:
    assert [s.label for s in sorted(Severity)] == LABELS
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert max(Severity.LOW, Severity.CRITICAL, Severity.MEDIUM) is Severity.CRITICAL


def test_severity_prints_as_its_lower_case_name() -> None:
    assert str(Severity.HIGH) == "high"
    assert f"{Severity.CRITICAL}" == "critical"
    assert [s.label for s in Severity] == LABELS


@pytest.mark.parametrize("label", LABELS)
def test_every_label_parses_back_to_its_severity(label: str) -> None:
    assert Severity.parse(label).label == label


@pytest.mark.parametrize(
    ("text", "expected"),
    [("HIGH", Severity.HIGH), ("Critical", Severity.CRITICAL), ("  info\n", Severity.INFO)],
)
def test_severity_names_are_case_and_whitespace_insensitive(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


@pytest.mark.parametrize("text", ["severe", "", "hi", "3", "medium-high", "warning"])
def test_unknown_severity_is_a_config_error_that_quotes_the_input(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Severity.parse(text)
    message = str(info.value)
    assert message.startswith(repr(text))
    # The user is told what would have been accepted.
    for label in LABELS:
        assert label in message


def test_config_error_is_a_pipewarden_error() -> None:
    # Callers catch the whole family with one clause (errors.py docstring).
    with pytest.raises(PipewardenError):
        Severity.parse("nope")


@given(st.text(max_size=30).filter(lambda t: t.strip().upper() not in Severity.__members__))
def test_any_other_text_is_refused_and_quoted(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Severity.parse(text)
    assert repr(text) in str(info.value)


# -- Location ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "text"),
    [
        (Location("model.pt"), "model.pt"),
        (Location("model.pt", member="archive/data.pkl"), "model.pt!archive/data.pkl"),
        (Location("model.pt", member="archive/data.pkl", offset=120), "model.pt!archive/data.pkl@120"),
        (Location("model.pkl", offset=0), "model.pkl@0"),
        (Location("a.zip", member="inner.tar!x/data.pkl", offset=7), "a.zip!inner.tar!x/data.pkl@7"),
        (Location("train.csv", row=12, column="label"), "train.csv row 12 column label"),
        (Location("train.csv", row=0), "train.csv row 0"),
        (Location("requirements.txt", package="numpy"), "requirements.txt package numpy"),
        (Location("model.pkl", member=""), "model.pkl"),
    ],
)
def test_location_describes_itself_on_one_line(location: Location, text: str) -> None:
    assert location.describe() == text


def test_location_dict_names_every_field_even_when_unset() -> None:
    assert Location("m.pkl", offset=3).to_dict() == {
        "path": "m.pkl",
        "member": None,
        "offset": 3,
        "row": None,
        "column": None,
        "package": None,
    }


# -- Finding ----------------------------------------------------------------


def test_a_finding_needs_a_rule_id() -> None:
    with pytest.raises(ValueError, match="rule_id"):
        make(rule_id="")


@pytest.mark.parametrize("bad", ["high", 3, None])
def test_a_finding_needs_a_real_severity_and_names_its_rule(bad: object) -> None:
    with pytest.raises(TypeError) as info:
        Finding(
            rule_id="PW-TEST-042",
            severity=bad,  # type: ignore[arg-type]
            title="t",
            message="m",
            location=Location("x"),
        )
    assert str(info.value).startswith("PW-TEST-042")


def test_findings_cannot_be_changed_after_the_fact() -> None:
    finding = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.severity = Severity.INFO  # type: ignore[misc]


def test_finding_dict_is_the_documented_shape() -> None:
    finding = make(
        "PW-SCAN-101",
        Severity.CRITICAL,
        path="m.pt",
        member="archive/data.pkl",
        offset=2,
        title="dangerous global",
        message="os.system",
        evidence={"global": "os.system"},
        references=("CWE-502", "AML.T0011.000"),
    )
    assert finding.to_dict() == {
        "rule_id": "PW-SCAN-101",
        "severity": "critical",
        "title": "dangerous global",
        "message": "os.system",
        "location": {
            "path": "m.pt",
            "member": "archive/data.pkl",
            "offset": 2,
            "row": None,
            "column": None,
            "package": None,
        },
        "evidence": {"global": "os.system"},
        "references": ["CWE-502", "AML.T0011.000"],
    }


def test_relocated_moves_a_finding_and_keeps_the_rest() -> None:
    finding = make(evidence={"k": 1}, references=("CWE-1",))
    moved = finding.relocated(Location("outer.zip", member="model.pkl", offset=9))
    assert moved.location.describe() == "outer.zip!model.pkl@9"
    assert finding.location.describe() == "model.pkl"
    assert (moved.rule_id, moved.severity, moved.evidence, moved.references) == (
        finding.rule_id,
        finding.severity,
        finding.evidence,
        finding.references,
    )


# -- Report -----------------------------------------------------------------


def every_severity() -> list[Finding]:
    return [
        make("PW-TEST-005", Severity.INFO, path="e.pkl"),
        make("PW-TEST-004", Severity.LOW, path="d.pkl"),
        make("PW-TEST-003", Severity.MEDIUM, path="c.pkl"),
        make("PW-TEST-002", Severity.HIGH, path="b.pkl"),
        make("PW-TEST-001", Severity.CRITICAL, path="a.pkl"),
    ]


def test_report_lists_the_worst_findings_first() -> None:
    report = Report.build(command="scan", findings=every_severity(), targets=5)
    assert [f.severity.label for f in report.findings] == list(reversed(LABELS))


def test_findings_of_one_severity_are_ordered_by_place_then_rule() -> None:
    findings = [
        make("PW-B", path="b.pkl"),
        make("PW-B", path="a.pkl", member="z", offset=5),
        make("PW-A", path="a.pkl", member="z", offset=5),
        make("PW-A", path="a.pkl", member="z", offset=1),
        make("PW-A", path="a.pkl", member="y"),
        make("PW-A", path="a.pkl"),
    ]
    report = Report.build(command="scan", findings=findings, targets=2)
    assert [(f.location.describe(), f.rule_id) for f in report.findings] == [
        ("a.pkl", "PW-A"),
        ("a.pkl!y", "PW-A"),
        ("a.pkl!z@1", "PW-A"),
        ("a.pkl!z@5", "PW-A"),
        ("a.pkl!z@5", "PW-B"),
        ("b.pkl", "PW-B"),
    ]


@given(st.randoms(use_true_random=False))
def test_order_does_not_depend_on_the_order_checks_ran_in(rng: random.Random) -> None:
    findings = [*every_severity(), make("PW-TEST-009", Severity.HIGH, path="a.pkl", offset=3)]
    shuffled = findings[:]
    rng.shuffle(shuffled)
    a = Report.build(command="scan", findings=findings, targets=6)
    b = Report.build(command="scan", findings=shuffled, targets=6)
    assert a.findings == b.findings
    # ... so two runs over the same input give byte-identical reports.
    for fmt in ("text", "json", "sarif", "html"):
        assert a.render(fmt) == b.render(fmt)


def test_counts_name_every_severity_worst_first_zeros_included() -> None:
    report = Report.build(
        command="scan",
        findings=[make(severity=Severity.HIGH), make(severity=Severity.HIGH), make(severity=Severity.INFO)],
        targets=1,
    )
    counts = report.counts()
    assert list(counts) == list(reversed(LABELS))
    assert counts == {"critical": 0, "high": 2, "medium": 0, "low": 0, "info": 1}


def test_a_clean_report_has_no_worst_severity_and_all_zero_counts() -> None:
    report = Report.build(command="scan", findings=[], targets=3)
    assert report.max_severity is None
    assert set(report.counts().values()) == {0}
    for threshold in Severity:
        assert report.exit_code(threshold) == 0
        assert report.at_or_above(threshold) == ()


def test_max_severity_is_the_worst_finding() -> None:
    report = Report.build(
        command="scan", findings=[make(severity=Severity.LOW), make(severity=Severity.MEDIUM)], targets=1
    )
    assert report.max_severity is Severity.MEDIUM


@pytest.mark.parametrize("threshold", list(Severity))
def test_at_or_above_includes_the_threshold_itself(threshold: Severity) -> None:
    report = Report.build(command="scan", findings=every_severity(), targets=5)
    picked = report.at_or_above(threshold)
    assert {f.severity for f in picked} == {s for s in Severity if s >= threshold}


@pytest.mark.parametrize(
    ("worst", "threshold", "code"),
    [
        (Severity.HIGH, Severity.MEDIUM, 1),
        (Severity.HIGH, Severity.HIGH, 1),
        (Severity.HIGH, Severity.CRITICAL, 0),
        (Severity.INFO, Severity.INFO, 1),
        (Severity.INFO, Severity.LOW, 0),
        (Severity.CRITICAL, Severity.CRITICAL, 1),
    ],
)
def test_exit_code_is_one_exactly_when_something_reaches_the_threshold(
    worst: Severity, threshold: Severity, code: int
) -> None:
    findings = [make(severity=s) for s in Severity if s <= worst]
    report = Report.build(command="scan", findings=findings, targets=1)
    assert report.exit_code(threshold) == code


def test_a_report_cannot_have_negative_targets() -> None:
    with pytest.raises(ValueError, match="targets"):
        Report.build(command="scan", findings=[], targets=-1)


def test_report_carries_the_installed_version_unless_given_one() -> None:
    assert Report.build(command="scan", findings=[], targets=0).version == __version__
    assert Report(command="scan", findings=(), targets=0, version="9.9").version == "9.9"
