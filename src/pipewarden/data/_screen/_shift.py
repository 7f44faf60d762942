"""Distribution shift against a trusted reference: per feature and for the labels.

Each feature is compared with the reference by the two-sample Kolmogorov-Smirnov test (`PW-DATA-241`),
the label counts by a chi-square test against the reference's class shares (`PW-DATA-242`), and columns
present on one side only are named (`PW-DATA-243`). The p-values are Bonferroni-corrected over the tests
made, so that on data drawn like the reference the chance of any shift finding is the rate asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chisquare, ks_2samp

from pipewarden.data._screen._features import Features

__all__ = ["Shift", "compare"]


@dataclass(frozen=True, slots=True)
class Shift:
    kind: str  # "feature", "label" or "column"
    name: str
    statistic: float
    p_value: float
    detail: str


def compare(data: Features, reference: Features, *, fpr: float) -> list[Shift]:
    shifts: list[Shift] = []
    mine = {name: i for i, name in enumerate(data.names)}
    theirs = {name: i for i, name in enumerate(reference.names)}
    # A category column is encoded as one indicator per value ("city=paris"); a value one side never
    # holds is that side's column of zeros, not a missing column. Only whole columns can be missing.
    # A column left out on either side (free text there) exists there all the same.
    base_mine = {name.split("=", 1)[0] for name in data.names} | set(data.left_out)
    base_theirs = {name.split("=", 1)[0] for name in reference.names} | set(reference.left_out)
    unscreened = set(data.left_out) | set(reference.left_out)
    for name in sorted(base_mine ^ base_theirs):
        side = "the data" if name in base_mine else "the reference"
        shifts.append(Shift("column", name, 1.0, 0.0, f"only in {side}"))
    shared = [
        name
        for name in sorted(set(mine) | set(theirs))
        if name.split("=", 1)[0] in (base_mine & base_theirs) - unscreened
    ]
    data_labels, reference_labels = data.labels, reference.labels
    label_test = data_labels is not None and reference_labels is not None
    tests = max(1, len(shared) + int(label_test))
    for name in shared:
        a = data.raw[:, mine[name]] if name in mine else np.zeros(data.rows)
        b = reference.raw[:, theirs[name]] if name in theirs else np.zeros(reference.rows)
        result = ks_2samp(a, b)
        p = float(result.pvalue) * tests
        if p < fpr:
            shifts.append(
                Shift(
                    "feature",
                    name,
                    float(result.statistic),
                    min(p, 1.0),
                    f"median {np.median(a):.4g} (reference {np.median(b):.4g}), "
                    f"KS distance {float(result.statistic):.3f}",
                )
            )
    if data_labels is not None and reference_labels is not None:
        classes = sorted(set(data.classes) | set(reference.classes))
        observed = np.array(
            [np.sum(data_labels == data.classes.index(c)) if c in data.classes else 0 for c in classes]
        )
        expected_share = np.array(
            [
                np.mean(reference_labels == reference.classes.index(c)) if c in reference.classes else 0.0
                for c in classes
            ]
        )
        new = [c for c, e, o in zip(classes, expected_share, observed, strict=True) if e == 0 and o > 0]
        if new:
            shifts.append(
                Shift("label", ",".join(new), 1.0, 0.0, "labels the reference never had: " + ", ".join(new))
            )
        else:
            expected = expected_share * observed.sum()
            keep = expected > 0
            result = chisquare(observed[keep], expected[keep])
            p = float(result.pvalue) * tests
            if p < fpr:
                shares = ", ".join(
                    f"{c}: {o / observed.sum():.1%} (reference {e:.1%})"
                    for c, o, e in zip(classes, observed, expected_share, strict=True)
                )
                shifts.append(Shift("label", "label", float(result.statistic), min(p, 1.0), shares))
    return shifts
