"""What the guard concludes: a verdict per row, the scores behind it, and a caller-level extraction status.

Results are frozen. The per-row numbers live in read-only numpy arrays so that a
batch of a million rows costs no million objects; `GuardResult.rows` builds the
per-row `RowVerdict` objects when someone asks for them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipewarden.findings import Finding, Location, Report, Severity

__all__ = [
    "RULES",
    "Action",
    "ExtractionStatus",
    "GuardResult",
    "RowVerdict",
    "Verdict",
]


class Verdict(enum.Enum):
    """What the guard concluded about one row (or, for extraction, about one caller)."""

    VALID = "valid"
    CONTRACT_VIOLATION = "contract_violation"
    OUT_OF_DISTRIBUTION = "out_of_distribution"
    SUSPECTED_ADVERSARIAL = "suspected_adversarial"
    SUSPECTED_EXTRACTION = "suspected_extraction"

    def __str__(self) -> str:
        return self.value


class Action(enum.Enum):
    """What a policy does with a row of a given verdict."""

    REFUSE = "refuse"
    FLAG = "flag"
    PASS = "pass"  # noqa: S105  (an action's name, not a password)

    def __str__(self) -> str:
        return self.value


#: Row verdicts in the order of their integer codes in `GuardResult.codes`.
ROW_VERDICTS: tuple[Verdict, ...] = (
    Verdict.VALID,
    Verdict.CONTRACT_VIOLATION,
    Verdict.OUT_OF_DISTRIBUTION,
    Verdict.SUSPECTED_ADVERSARIAL,
)
VALID, CONTRACT, OOD, ADVERSARIAL = range(4)
#: Codes of the actions in `GuardResult.actions`.
ACTIONS: tuple[Action, ...] = (Action.PASS, Action.FLAG, Action.REFUSE)
PASS_, FLAG_, REFUSE_ = range(3)
#: `GuardResult.extraction_verdict` of a check without a caller: the watch keeps no history without one.
NOT_CHECKED = "not checked"

#: rule id -> (verdict, severity, title, references). Documented in docs/data.md ("The inference guard").
RULES: Mapping[str, tuple[Verdict, Severity, str, tuple[str, ...]]] = {
    "PW-GUARD-101": (
        Verdict.CONTRACT_VIOLATION,
        Severity.HIGH,
        "Input row violates the data contract",
        ("CWE-20",),
    ),
    "PW-GUARD-102": (
        Verdict.OUT_OF_DISTRIBUTION,
        Severity.MEDIUM,
        "Input row is out of the reference distribution",
        ("AML.T0043",),
    ),
    "PW-GUARD-103": (
        Verdict.SUSPECTED_ADVERSARIAL,
        Severity.HIGH,
        "Input row looks adversarial",
        ("AML.T0043",),
    ),
    "PW-GUARD-201": (
        Verdict.SUSPECTED_EXTRACTION,
        Severity.HIGH,
        "Caller's query pattern looks like a model-extraction campaign",
        ("AML.T0024.002",),
    ),
}
_RULE_OF = {verdict: rule for rule, (verdict, *_rest) in RULES.items()}


def _readonly(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    array.setflags(write=False)
    return array


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True, slots=True)
class ExtractionStatus:
    """The query-pattern watch's view of one caller after this batch.

    `verdict` is `Verdict.SUSPECTED_EXTRACTION` once a signal fired (it stays so
    for the caller until the guard forgets it), `Verdict.VALID` otherwise.
    `signals` names what fired: ``prada`` (the Shapiro-Wilk statistic `prada_w`
    of the caller's minimum query distances fell below `prada_threshold`),
    ``rate`` (more than the allowed rows per second), ``coverage`` (significantly
    more queries in cells of the input space that the reference never reaches
    than clean traffic sends there).
    """

    caller: str
    verdict: Verdict
    signals: tuple[str, ...]
    queries: int
    prada_w: float | None
    prada_threshold: float
    rate: float
    coverage: float
    off_manifold: float

    @property
    def suspected(self) -> bool:
        return self.verdict is Verdict.SUSPECTED_EXTRACTION

    def describe(self) -> str:
        w = "n/a" if self.prada_w is None else f"{self.prada_w:.3f}"
        return (
            f"caller {self.caller!r}: {self.queries} queries, PRADA W {w} (threshold "
            f"{self.prada_threshold:.3f}), {self.rate:.1f} rows/s, coverage {self.coverage:.1%} of cells, "
            f"{self.off_manifold:.1%} of queries in cells the reference never reaches"
        )


@dataclass(frozen=True, slots=True)
class RowVerdict:
    """One row's verdict, what the policy does with it, its scores (1.0 = threshold) and the reason.

    `score` is the guard's overall score, the out-of-distribution score: the
    larger of the ``knn`` and ``mahalanobis`` scores, each divided by its
    calibrated threshold, so a row with `score > 1` is over the line.
    `adversarial_score` (the share of the row's nearest reference rows whose
    label disagrees with the model, over its threshold) is computed for rows
    over the line when the guard has `predict_proba`; above 1 it makes the
    verdict `SUSPECTED_ADVERSARIAL`. Scores are None where they were not
    computed (a row that broke the contract is not scored).
    """

    row: int
    verdict: Verdict
    action: Action
    score: float | None
    ood_score: float | None
    adversarial_score: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The verdict on every row of one batch, in batch order, and the caller's extraction status.

    >>> result = guard.check(batch, caller="client-7")
    >>> result.counts()                     # {"valid": 98, "out_of_distribution": 2, ...}
    >>> [r.reason for r in result.rows if r.verdict is not Verdict.VALID]
    >>> result.report().render("json")
    """

    codes: np.ndarray[Any, Any]
    actions: np.ndarray[Any, Any]
    score: np.ndarray[Any, Any]
    ood_score: np.ndarray[Any, Any]
    adversarial_score: np.ndarray[Any, Any]
    violations: Mapping[int, str]
    caller: str | None = None
    extraction: ExtractionStatus | None = None
    source: str = "batch"
    raw_scores: Mapping[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for array in (self.codes, self.actions, self.score, self.ood_score, self.adversarial_score):
            _readonly(array)
        for array in self.raw_scores.values():
            _readonly(array)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def verdict(self, row: int) -> Verdict:
        return ROW_VERDICTS[int(self.codes[row])]

    def action(self, row: int) -> Action:
        return ACTIONS[int(self.actions[row])]

    def reason(self, row: int) -> str:
        code = int(self.codes[row])
        if code == CONTRACT:
            return self.violations.get(row, "breaks the data contract")
        if code == OOD:
            return (
                f"out of distribution: its distance to the reference data is {self.ood_score[row]:.2f}x "
                "the calibrated threshold"
            )
        if code == ADVERSARIAL:
            return (
                f"suspected adversarial: out of distribution ({self.ood_score[row]:.2f}x the calibrated "
                "threshold) and the model's class disagrees with the labels of its nearest reference rows "
                f"({self.adversarial_score[row]:.2f}x the calibrated threshold)"
            )
        return "valid: within the contract and the reference distribution"

    def row(self, row: int) -> RowVerdict:
        return RowVerdict(
            row=row,
            verdict=self.verdict(row),
            action=self.action(row),
            score=_number(self.score[row]),
            ood_score=_number(self.ood_score[row]),
            adversarial_score=_number(self.adversarial_score[row]),
            reason=self.reason(row),
        )

    @property
    def rows(self) -> tuple[RowVerdict, ...]:
        return tuple(self.row(i) for i in range(len(self)))

    @property
    def refused(self) -> tuple[int, ...]:
        """Rows the policy refuses (0-based, in batch order)."""
        return tuple(int(i) for i in np.flatnonzero(self.actions == REFUSE_))

    @property
    def flagged(self) -> tuple[int, ...]:
        """Rows the policy lets through with a flag."""
        return tuple(int(i) for i in np.flatnonzero(self.actions == FLAG_))

    @property
    def extraction_verdict(self) -> str:
        """The extraction watch's verdict on the caller: ``"valid"``, ``"suspected_extraction"``, or
        ``"not checked"`` when the batch came without a caller (which is not a pass)."""
        if self.extraction is None:
            return NOT_CHECKED
        return self.extraction.verdict.value

    @property
    def allowed(self) -> bool:
        """True when the policy refuses no row of the batch."""
        return not bool((self.actions == REFUSE_).any())

    def counts(self) -> dict[str, int]:
        """Rows per verdict, every row verdict present (zero included)."""
        found = np.bincount(self.codes, minlength=len(ROW_VERDICTS))
        return {verdict.value: int(n) for verdict, n in zip(ROW_VERDICTS, found, strict=True)}

    def report(self) -> Report:
        """The shared findings form: one finding per row that is not valid (`location.row` its index in the
        batch), and one per caller suspected of extraction."""
        findings = []
        for i in np.flatnonzero(self.codes != VALID):
            row = self.row(int(i))
            rule = _RULE_OF[row.verdict]
            _, severity, title, refs = RULES[rule]
            evidence: dict[str, Any] = {
                "verdict": row.verdict.value,
                "action": row.action.value,
                "score": row.score,
                "ood_score": row.ood_score,
                "adversarial_score": row.adversarial_score,
            }
            if self.caller is not None:
                evidence["caller"] = self.caller
            findings.append(
                Finding(
                    rule_id=rule,
                    severity=severity,
                    title=title,
                    message=row.reason,
                    location=Location(path=self.source, row=row.row),
                    evidence=evidence,
                    references=refs,
                )
            )
        status = self.extraction
        if status is not None and status.suspected:
            _, severity, title, refs = RULES["PW-GUARD-201"]
            findings.append(
                Finding(
                    rule_id="PW-GUARD-201",
                    severity=severity,
                    title=title,
                    message=status.describe(),
                    location=Location(path=self.source),
                    evidence={
                        "caller": status.caller,
                        "signals": list(status.signals),
                        "queries": status.queries,
                        "prada_w": status.prada_w,
                        "prada_threshold": status.prada_threshold,
                        "rate": status.rate,
                        "coverage": status.coverage,
                        "off_manifold": status.off_manifold,
                    },
                    references=refs,
                )
            )
        return Report.build(command="guard.check", findings=findings, targets=len(self))
