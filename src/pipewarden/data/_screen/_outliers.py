"""Injected points: rows far from every other row, or far from the other rows of their own class.

The score is the mean distance to a row's `K` nearest neighbours (in the scaled space), taken over all
rows (`PW-DATA-211`, global) and over the rows with the same label (`PW-DATA-212`, within the class: a
cat-shaped point labelled dog is ordinary among all rows and alone among the dogs). Log distances are
compared with their own median and spread; the false-positive rate asked for is split between the two.
A row is an outlier within its class only when it is both far among its class and farther from its
class than its distance to all rows explains (the log ratio of the two distances, compared with the
class's own): a row in a sparse corner of the data is far from its class for the same reason it is far
from everything, which `PW-DATA-211` already judges, and calling it twice spent the budget twice.

For a table (not an image array) with at least `MAHALANOBIS_ROWS_PER_FEATURE` rows per feature (over
all rows, and again within a class), the score also weighs the row's robust Mahalanobis distance
(minimum covariance determinant, fitted on a sample): correlated columns make a point that is ordinary
in every column alone stand out, and the two scores' consensus has lighter tails on skewed data than
either alone.

Within a class of more than `CLASS_SAMPLE` rows, the neighbours are searched among a sample of that many
of its rows, and above `EXACT_ROWS` rows the class is described by neighbour distances alone (that many
rows pin its shape down, and a robust covariance per class would cost seconds each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipewarden.data._screen._calibrate import robust_z, upper_threshold
from pipewarden.data._screen._neighbors import EXACT_ROWS, Neighbours, neighbours

__all__ = ["OutlierScores", "score_outliers"]

K = 10
MAHALANOBIS_ROWS_PER_FEATURE = 5
_MCD_SAMPLE = 5_000
CLASS_SAMPLE = 5_000
#: A class with fewer rows than this is too small to say what is far within it.
MIN_CLASS_ROWS = 3 * K


@dataclass(frozen=True, slots=True)
class OutlierScores:
    global_z: np.ndarray
    class_z: np.ndarray  # NaN where the class is too small
    class_excess: np.ndarray  # robust z of log(class distance / global distance); NaN likewise
    threshold: float
    global_flagged: np.ndarray
    class_flagged: np.ndarray


def _log_mean_distance(found: Neighbours) -> np.ndarray:
    result: np.ndarray = np.log(found.distance.mean(axis=1) + 1e-12)
    return result


def _mahalanobis_z(x: np.ndarray, seed: int) -> np.ndarray | None:
    import warnings

    from sklearn.covariance import MinCovDet

    n, d = x.shape
    if n < MAHALANOBIS_ROWS_PER_FEATURE * max(d, 2):
        return None
    rng = np.random.default_rng(seed)
    sample = x if n <= _MCD_SAMPLE else x[rng.choice(n, _MCD_SAMPLE, replace=False)]
    with warnings.catch_warnings():
        # A singular covariance (a constant or duplicated column) is reported by a warning; MCD copes.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            fitted = MinCovDet(random_state=seed).fit(sample)
        except ValueError:
            return None
    distance = fitted.mahalanobis(x)
    return robust_z(np.log(distance + 1e-12))


def score_outliers(
    x: np.ndarray,
    labels: np.ndarray | None,
    *,
    fpr: float,
    seed: int,
    everyone: Neighbours | None = None,
    table: bool = True,
) -> OutlierScores:
    found = everyone if everyone is not None else neighbours(x, k=K, seed=seed)
    global_distance = _log_mean_distance(found)
    global_z = robust_z(global_distance)
    mahalanobis = _mahalanobis_z(x, seed) if table else None
    if mahalanobis is not None:
        global_z = robust_z(global_z + mahalanobis)
    class_z = np.full(len(x), np.nan)
    class_excess = np.full(len(x), np.nan)
    parts = 1
    if labels is not None:
        parts = 2
        for code in np.unique(labels):
            rows = np.flatnonzero(labels == code)
            if len(rows) < MIN_CLASS_ROWS:
                continue
            within = neighbours(x[rows], k=K, seed=seed, sample=CLASS_SAMPLE)
            distance = _log_mean_distance(within)
            class_excess[rows] = robust_z(distance - global_distance[rows])
            z = robust_z(distance)
            shape_z = _mahalanobis_z(x[rows], seed) if table and len(rows) <= EXACT_ROWS else None
            class_z[rows] = robust_z(z + shape_z) if shape_z is not None else z
    threshold = upper_threshold(fpr / parts)
    far_in_class = np.nan_to_num(class_z, nan=-np.inf) > threshold
    return OutlierScores(
        global_z=global_z,
        class_z=class_z,
        class_excess=class_excess,
        threshold=threshold,
        global_flagged=global_z > threshold,
        class_flagged=far_in_class & (np.nan_to_num(class_excess, nan=-np.inf) > threshold),
    )
