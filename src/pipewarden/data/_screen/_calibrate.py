"""Thresholds from a false-positive rate, estimated robustly from the data being screened.

A score's clean distribution is taken to be the bulk of what is observed: its centre is the median and
its spread, on the side the check looks at, the distance from the median to the quartile on that side
(scaled to a standard deviation). Up to a quarter of the rows being planted cannot move either much,
and a skewed score gets the wider spread of its long side. The threshold is where a normal tail with
that centre and spread leaves the rate asked for. Scores are transformed (log distances) first.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["robust_z", "upper_threshold"]

_QUARTILE_TO_SD = 1.0 / 0.6745  # a normal distribution's quartile lies 0.6745 standard deviations out


def robust_z(values: np.ndarray, *, side: str = "upper") -> np.ndarray:
    """How many robust standard deviations each value lies from the median, measured with the spread of
    the `side` ("upper" or "lower") the check looks at."""
    centre = float(np.median(values))
    quartile = float(np.quantile(values, 0.75 if side == "upper" else 0.25))
    spread = abs(quartile - centre) * _QUARTILE_TO_SD
    if spread <= 0:
        spread = float(values.std()) or 1.0
    return (values - centre) / spread


def upper_threshold(fpr: float) -> float:
    """The robust z above which a clean row lands with probability `fpr`."""
    return float(norm.isf(fpr))
