"""The poisoning screen: every detector over one table, one finding per suspected row."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from pipewarden.data._screen._backdoor import Trigger, find_triggers
from pipewarden.data._screen._duplicates import DuplicateScores, find_duplicates
from pipewarden.data._screen._features import Features, encode
from pipewarden.data._screen._labels import GRAPH_NEIGHBOURS, SMALL_ROWS, LabelScores, score_labels
from pipewarden.data._screen._neighbors import neighbours
from pipewarden.data._screen._outliers import K, OutlierScores, score_outliers
from pipewarden.data._screen._shift import Shift, compare
from pipewarden.data._table import Table
from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report, Severity

__all__ = ["DETECTORS", "SCREEN_RULES", "ScreenResult", "screen"]

logger = logging.getLogger(__name__)

_POISON = ("AML.T0020",)

#: rule id -> (severity, title), in the order that decides which rule names a row several detectors flag.
SCREEN_RULES: MappingProxyType[str, tuple[Severity, str]] = MappingProxyType(
    {
        "PW-DATA-231": (Severity.HIGH, "backdoor trigger: a rare pattern that carries one label"),
        "PW-DATA-221": (Severity.HIGH, "mislabelled near-copy of another row"),
        "PW-DATA-201": (Severity.HIGH, "label looks flipped"),
        "PW-DATA-222": (Severity.MEDIUM, "near-duplicate flood"),
        "PW-DATA-211": (Severity.MEDIUM, "outlier among all rows"),
        "PW-DATA-212": (Severity.MEDIUM, "outlier within its class"),
        "PW-DATA-202": (Severity.MEDIUM, "label contradicted by the other rows"),
        "PW-DATA-205": (Severity.MEDIUM, "infinite value: the row cannot be screened"),
        "PW-DATA-241": (Severity.MEDIUM, "feature distribution shifted from the reference"),
        "PW-DATA-242": (Severity.HIGH, "label distribution shifted from the reference"),
        "PW-DATA-243": (Severity.MEDIUM, "column only on one side of the reference"),
        "PW-DATA-200": (Severity.INFO, "rows screened"),
    }
)

#: Detector names for `checks=`, and what each needs.
DETECTORS = ("labels", "outliers", "duplicates", "backdoor", "shift")


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What the screen concluded: the report (one finding per suspected row, plus shift findings), the
    flagged rows, and the estimates a person needs to judge them."""

    report: Report
    rows: int
    flagged: np.ndarray  # (rows,) bool: rows with a finding
    estimates: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def flagged_rows(self) -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(self.flagged))


def _check_settings(fpr: float, checks: Iterable[str] | None) -> frozenset[str]:
    if not 0.0 < fpr < 0.5:
        raise ConfigError(f"false-positive rate {fpr!r}: must be above 0 and below 0.5")
    chosen = frozenset(DETECTORS if checks is None else checks)
    unknown = sorted(chosen - set(DETECTORS))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a screen check (choose from {', '.join(DETECTORS)})")
    if not chosen:
        raise ConfigError("the screen needs at least one check")
    return chosen


def screen(
    table: Table,
    *,
    reference: Table | None = None,
    fpr: float = 0.01,
    checks: Iterable[str] | None = None,
    seed: int = 0,
) -> ScreenResult:
    """Screen `table` for planted training rows; `reference` (trusted data) adds the shift checks.

    `fpr` is the share of clean rows each calibrated detector may flag (see docs/data.md). The label
    checks need `table.label`; without it the screen runs the checks that do not.

    >>> result = screen(read_table("train.csv", label="y"))  # doctest: +SKIP
    >>> result.report.render("text")  # doctest: +SKIP
    """
    chosen = _check_settings(fpr, checks)
    # Fail closed: a check asked for by name that cannot run is an error, not a silent pass; the default
    # set drops what cannot run and the summary says what was not checked.
    needs = {
        "labels": table.label is not None,
        "backdoor": table.label is not None,
        "shift": reference is not None,
    }
    missing = sorted(c for c in chosen if not needs.get(c, True))
    if missing and checks is not None:
        why = "a label column (--label or --labels)" if "shift" not in missing else "a --reference"
        raise ConfigError(f"{table.source}: the {', '.join(missing)} check needs {why}")
    chosen = chosen - set(missing)
    started = time.perf_counter()
    features = encode(table.frame, label=table.label, source=table.source, shape=table.shape)
    n = features.rows
    x = features.scaled
    labels = features.labels
    hits: dict[str, dict[int, dict[str, Any]]] = {rule: {} for rule in SCREEN_RULES}
    estimates: dict[str, Any] = {"rows": n, "fpr": fpr, "not_checked": ", ".join(missing)}
    # One neighbour search serves every check; above SMALL_ROWS the label check votes with more of them.
    wide = n > SMALL_ROWS and labels is not None and "labels" in chosen
    search = neighbours(x, k=GRAPH_NEIGHBOURS if wide else K, seed=seed)
    found = search.nearest(K)
    dups: DuplicateScores | None = None
    if "duplicates" in chosen or "labels" in chosen:
        dups = find_duplicates(x, labels, found, fpr=fpr, seed=seed)
    if "duplicates" in chosen and dups is not None:
        _duplicates(dups, features, hits)
        estimates["near_duplicate_radius"] = dups.radius
        estimates["flood_size"] = dups.flood_size
    if "outliers" in chosen:
        _outliers(
            score_outliers(x, labels, fpr=fpr, seed=seed, everyone=found, table=table.shape is None), hits
        )
    if labels is not None and "labels" in chosen:
        scores = score_labels(
            x,
            features.raw,
            labels,
            fpr=fpr,
            seed=seed,
            groups=dups.group if dups else None,
            graph=search if wide else None,
        )
        _labels(scores, features, hits)
        estimates.update(
            noise_rate=scores.noise_rate,
            temperature=scores.temperature,
            estimated_clean_error=scores.estimated_clean_error,
        )
    if labels is not None and "backdoor" in chosen:
        _backdoor(find_triggers(features.raw, x, labels, fpr=fpr, seed=seed), features, hits)
    shift_findings: list[Finding] = []
    if reference is not None and "shift" in chosen:
        ref = encode(reference.frame, label=reference.label, source=reference.source, shape=reference.shape)
        shift_findings = [
            _shift_finding(s, table.source, reference.source) for s in compare(features, ref, fpr=fpr)
        ]
    for row in np.flatnonzero(features.infinite).tolist():
        hits["PW-DATA-205"][row] = {
            "score": 1.0,
            "why": "holds an infinite number: no distance can place it, so it is not screened (and no "
            "model should train on it)",
        }
    findings, flagged = _row_findings(hits, n, table.source)
    estimates["seconds"] = round(time.perf_counter() - started, 3)
    estimates["flagged"] = int(flagged.sum())
    notes = []
    if features.left_out:
        notes.append(f"columns not screened (free text or no number): {', '.join(features.left_out)}")
    if features.unparsed:
        cells = ", ".join(f"{c} ({k})" for c, k in sorted(features.unparsed.items()))
        notes.append(f"cells that are not numbers, screened as missing: {cells}")
    if dups is not None and "duplicates" in chosen and not dups.floods_judged:
        notes.append(
            "most rows have a near-twin and the groups are too few to set a flood limit: floods not judged"
        )
    if missing:
        notes.append(f"checks not run: {', '.join(missing)} (no label column or no reference)")
    estimates["left_out_columns"] = ", ".join(features.left_out)
    estimates["unparsed_cells"] = sum(features.unparsed.values())
    findings.append(
        Finding(
            rule_id="PW-DATA-200",
            severity=Severity.INFO,
            title="rows screened",
            message=f"{n} rows: {int(flagged.sum())} flagged, {n - int(flagged.sum())} not "
            f"(false-positive rate asked for: {fpr:g} per calibrated check)"
            + "".join(f"; {note}" for note in notes),
            location=Location(path=table.source),
            evidence=estimates,
        )
    )
    logger.info("screened %s: %d rows, %d flagged", table.source, n, int(flagged.sum()))
    report = Report.build(command="data screen", findings=[*findings, *shift_findings], targets=1)
    return ScreenResult(report=report, rows=n, flagged=flagged, estimates=MappingProxyType(estimates))


def _row_findings(
    hits: dict[str, dict[int, dict[str, Any]]], n: int, source: str
) -> tuple[list[Finding], np.ndarray]:
    flagged = np.zeros(n, dtype=bool)
    by_row: dict[int, list[str]] = {}
    for rule, rows in hits.items():
        for row in rows:
            by_row.setdefault(row, []).append(rule)
    findings = []
    for row in sorted(by_row):
        rules = by_row[row]  # SCREEN_RULES order: the first names the finding
        rule = rules[0]
        title = SCREEN_RULES[rule][1]
        evidence = dict(hits[rule][row])
        evidence["detectors"] = rules
        for other in rules[1:]:
            evidence[f"score_{other[-3:]}"] = hits[other][row]["score"]
        flagged[row] = True
        findings.append(
            Finding(
                rule_id=rule,
                severity=max(SCREEN_RULES[r][0] for r in rules),
                title=title,
                message=str(evidence.pop("why")),
                location=Location(path=source, row=row),
                evidence=evidence,
                references=_POISON,
            )
        )
    return findings, flagged


def _class(features: Features, code: int) -> str:
    return features.classes[int(code)]


def _labels(scores: LabelScores, features: Features, hits: dict[str, dict[int, dict[str, Any]]]) -> None:
    if features.labels is None:
        return
    for rule, mask in (("PW-DATA-201", scores.noise_flagged), ("PW-DATA-202", scores.disagreement_flagged)):
        for row in np.flatnonzero(mask).tolist():
            given = _class(features, features.labels[row])
            likely = _class(features, scores.top_class[row])
            score = (
                float(scores.posterior[row])
                if rule == "PW-DATA-201"
                else float(scores.top[row] / max(scores.given[row], 1e-9))
            )
            hits[rule][row] = {
                "score": round(score, 4),
                "label": given,
                "likely_label": likely,
                "label_probability": round(float(scores.given[row]), 4),
                "likely_probability": round(float(scores.top[row]), 4),
                "why": f"labelled {given!r}, but models that never saw this row give {likely!r} "
                f"{float(scores.top[row]):.0%} and {given!r} {float(scores.given[row]):.0%}",
            }


def _outliers(scores: OutlierScores, hits: dict[str, dict[int, dict[str, Any]]]) -> None:
    for rule, z, mask, where in (
        ("PW-DATA-211", scores.global_z, scores.global_flagged, "all rows"),
        ("PW-DATA-212", scores.class_z, scores.class_flagged, "the rows of its class"),
    ):
        for row in np.flatnonzero(mask).tolist():
            hits[rule][row] = {
                "score": round(float(z[row]), 3),
                "threshold": round(scores.threshold, 3),
                "why": f"its nearest neighbours among {where} are {float(z[row]):.1f} robust standard "
                f"deviations farther than usual (threshold {scores.threshold:.2f})",
            }
            if rule == "PW-DATA-212":
                excess = float(scores.class_excess[row])
                hits[rule][row]["excess"] = round(excess, 3)
                hits[rule][row]["why"] += (
                    f", and {excess:.1f} farther from its class than its distance to all rows explains"
                )


def _duplicates(
    dups: DuplicateScores, features: Features, hits: dict[str, dict[int, dict[str, Any]]]
) -> None:
    for row in np.flatnonzero(dups.mislabelled).tolist():
        label = _class(features, features.labels[row]) if features.labels is not None else ""
        support = float(np.nan_to_num(dups.support[row], nan=0.0))
        hits["PW-DATA-221"][row] = {
            "score": round(1.0 - support, 4),
            "group": int(dups.group[row]),
            "copy_of": int(dups.partner[row]),
            "group_size": int(dups.group_size[row]),
            "distance": round(float(dups.nearest[row]), 6),
            "radius": round(dups.radius, 6),
            "label": label,
            "why": f"a near-copy of row {int(dups.partner[row])} (distance {float(dups.nearest[row]):.3g}, "
            f"ordinary neighbours are beyond {dups.radius:.3g}) with another label, {label!r}, which "
            f"{support:.0%} of its other neighbours share",
        }
    for row in np.flatnonzero(dups.flood).tolist():
        hits["PW-DATA-222"][row] = {
            "score": int(dups.star[row]),
            "group": int(dups.group[row]),
            "copies": int(dups.star[row]),
            "flood_size": dups.flood_size,
            "why": f"one of {int(dups.star[row])} rows within the near-duplicate radius of row "
            f"{int(dups.group[row])}; more than {dups.flood_size} make a flood",
        }


def _pattern(features: Features, columns: tuple[int, ...]) -> str:
    shape = features.shape
    if shape is not None and len(shape) >= 2:
        width = int(np.prod(shape[1:]))
        return ", ".join(f"({c // width},{(c % width) // int(np.prod(shape[2:]) or 1)})" for c in columns)
    return ", ".join(features.names[c] for c in columns)


def _backdoor(
    triggers: list[Trigger], features: Features, hits: dict[str, dict[int, dict[str, Any]]]
) -> None:
    for trigger in triggers:
        label = _class(features, trigger.label)
        pattern = _pattern(features, trigger.features)
        for row, share in zip(trigger.rows.tolist(), trigger.other_label_share.tolist(), strict=True):
            hits["PW-DATA-231"][row] = {
                "score": round(float(share), 4),
                "label": label,
                "pattern": pattern,
                "carriers": trigger.carriers,
                "p_value": float(f"{trigger.p_value:.3g}"),
                "why": f"carries a rare pattern at {pattern} that {trigger.carriers} rows share and that "
                f"comes with label {label!r}; {share:.0%} of its nearest rows without the pattern say "
                "another label",
            }


def _shift_finding(shift: Shift, source: str, reference: str) -> Finding:
    rule = {"feature": "PW-DATA-241", "label": "PW-DATA-242", "column": "PW-DATA-243"}[shift.kind]
    severity, title = SCREEN_RULES[rule]
    return Finding(
        rule_id=rule,
        severity=severity,
        title=title,
        message=f"{shift.name}: {shift.detail} (against {reference})",
        location=Location(path=source, column=shift.name),
        evidence={
            "score": round(shift.statistic, 4),
            "p_value": float(f"{shift.p_value:.3g}"),
            "reference": reference,
        },
        references=_POISON,
    )
