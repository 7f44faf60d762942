"""The rule ids of `pipewarden data check` (PW-DATA-1xx): one table, so the docs and the code agree."""

from __future__ import annotations

from dataclasses import dataclass

from pipewarden.findings import Severity

__all__ = ["RULES", "Rule", "rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    severity: Severity
    title: str
    references: tuple[str, ...] = ()
    per_row: bool = True


_POISONING = "AML.T0020"  # MITRE ATLAS: poison training data

RULES: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        Rule("PW-DATA-100", Severity.INFO, "Rows checked: accepted and quarantined", per_row=False),
        Rule("PW-DATA-101", Severity.HIGH, "Schema drift: a contract column is missing", per_row=False),
        Rule(
            "PW-DATA-102", Severity.MEDIUM, "Schema drift: a column the contract does not list", per_row=False
        ),
        Rule("PW-DATA-103", Severity.MEDIUM, "Value of the wrong type", ("CWE-20",)),
        Rule("PW-DATA-104", Severity.MEDIUM, "Missing value in a column that needs one", ("CWE-20",)),
        Rule("PW-DATA-105", Severity.MEDIUM, "Number out of the contract's range", ("CWE-20",)),
        Rule("PW-DATA-106", Severity.MEDIUM, "Value not among the allowed categories", ("CWE-20",)),
        Rule("PW-DATA-107", Severity.MEDIUM, "Text length out of the contract's bounds", ("CWE-20",)),
        Rule("PW-DATA-108", Severity.MEDIUM, "Text does not match the column's pattern", ("CWE-20",)),
        Rule("PW-DATA-109", Severity.MEDIUM, "Repeated value in a unique column", ("CWE-20",)),
        Rule("PW-DATA-110", Severity.MEDIUM, "Row count out of the contract's bounds", per_row=False),
        Rule("PW-DATA-111", Severity.HIGH, "Label outside the contract's label set", (_POISONING,)),
        Rule("PW-DATA-112", Severity.HIGH, "Label distribution shift", (_POISONING,), per_row=False),
        Rule("PW-DATA-113", Severity.HIGH, "Duplicate-row flood", (_POISONING,), per_row=False),
        Rule("PW-DATA-114", Severity.MEDIUM, "Duplicate row beyond the contract's allowance", (_POISONING,)),
        Rule("PW-DATA-120", Severity.HIGH, "Spreadsheet formula injection", ("CWE-1236",)),
        Rule("PW-DATA-121", Severity.HIGH, "Control characters or NUL bytes in text", ("CWE-150",)),
        Rule("PW-DATA-122", Severity.HIGH, "Oversized text cell", ("CWE-770",)),
        Rule("PW-DATA-123", Severity.MEDIUM, "NaN or infinity where a number is expected", ("CWE-20",)),
        Rule("PW-DATA-130", Severity.LOW, "Uniqueness or duplicate tracking limit reached", per_row=False),
    )
}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
