"""Every malicious technique in the corpus is flagged; no benign file from a real library is."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.findings import Severity
from pipewarden.scan import scan_path
from tests.scan.corpus import Case, available, benign_cases, malicious_cases

# Findings that only say "could not read": a technique must be caught for what it is.
_READ_FAILURES = {"PW-SCAN-202", "PW-SCAN-203", "PW-SCAN-208"}


def _build(case: Case, tmp_path: Path) -> Path:
    if not available(case):
        pytest.skip(f"needs {', '.join(case.needs)}")
    return case.build(tmp_path)


@pytest.mark.parametrize("case", malicious_cases(), ids=lambda c: c.name)
def test_malicious_case_is_flagged(case: Case, tmp_path: Path) -> None:
    report = scan_path(_build(case, tmp_path))
    assert report.exit_code(Severity.MEDIUM) == 1, report.render("text")
    decisive = [f for f in report.at_or_above(Severity.MEDIUM) if f.rule_id not in _READ_FAILURES]
    assert decisive, f"{case.name} was only flagged as unreadable:\n{report.render('text')}"


@pytest.mark.parametrize("case", benign_cases(), ids=lambda c: c.name)
def test_benign_case_is_clean(case: Case, tmp_path: Path) -> None:
    report = scan_path(_build(case, tmp_path))
    assert report.at_or_above(Severity.LOW) == (), report.render("text")


def test_case_names_are_unique() -> None:
    names = [c.name for c in malicious_cases() + benign_cases()]
    assert len(names) == len(set(names))
