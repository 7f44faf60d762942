"""Out-of-distribution and adversarial scores, and their calibration on held-out clean rows.

Features are min-max scaled by the reference (each feature's range becomes 1),
so features of different units weigh alike and a feature that never moves in
the reference makes any movement count. In that space:

- ``knn``: the mean Euclidean distance to the `k` nearest reference rows;
- ``mahalanobis``: the distance to the reference mean under a shrunk
  (Ledoit-Wolf) covariance, for rows that are far along correlated directions;
- ``adversarial`` (only with `predict_proba`): the share of the `k` nearest
  reference rows whose label is not the class the model gives the row. A clean
  row sits among rows of its own class; a row pushed over a decision boundary by
  a small perturbation still sits nearest to rows of its old class. It only
  labels rows that are already over the out-of-distribution line (docs/data.md,
  "The inference guard", says why): the model is not called for rows under it.

Calibration (`calibrate`) turns ``knn`` and ``mahalanobis`` into multiples of
their thresholds, so the guard's overall score is their maximum and 1.0 is the
line: thresholds are set so that the share of held-out clean rows above the
line is the target false-positive rate, both scores together. Rows held out
beyond the index count only when there are at least `held_out_rows(fpr)` of
them; fewer cannot place a `1 - fpr` quantile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipewarden.errors import GuardError

__all__ = ["Calibration", "Scaling", "Scorer", "calibrate", "held_out_rows"]

Array = np.ndarray[Any, Any]
ProbaFn = Callable[[Array], Any]

_BLOCK = 1 << 22  # distance-matrix entries per block: batches are scored in blocks of 32 MB
_Z_LIMIT = 1e6  # scaled values are clipped here so that squares stay finite
_MIN_HELD_OUT = 200


def held_out_rows(fpr: float) -> int:
    """The fewest held-out rows that estimate a `1 - fpr` quantile: about 20 of them over it, and 200."""
    return max(_MIN_HELD_OUT, math.ceil(20.0 / fpr))


class Scaling:
    """Min-max scaling by the reference: each feature's reference range becomes 1."""

    def __init__(self, rows: Array) -> None:
        low = rows.min(axis=0)
        span = rows.max(axis=0) - low
        # A feature that never moves gets a tiny span, not zero: any movement is then far.
        self.low = low
        self.scale = 1.0 / np.maximum(span, 1e-6 * np.maximum(1.0, np.abs(low)))

    def __call__(self, x: Array) -> Array:
        z: Array = (x - self.low) * self.scale
        # Finite however far out: an overflow to infinity would make a distance NaN, which compares as
        # "not above the threshold".
        np.maximum(z, -_Z_LIMIT, out=z)
        np.minimum(z, _Z_LIMIT, out=z)
        return z


class Scorer:
    """The reference index (scaled rows, sorted by class) and the raw scores of rows against it."""

    def __init__(
        self,
        z: Array,
        *,
        scaling: Scaling,
        labels: Array | None,
        n_classes: int,
        neighbours: int,
        predict_proba: ProbaFn | None,
    ) -> None:
        self.scaling = scaling
        self.k = max(1, min(neighbours, z.shape[0]))
        self.predict_proba = predict_proba if labels is not None else None
        self.n_classes = n_classes
        self.ref_labels = np.asarray(labels) if labels is not None else np.zeros(0, dtype=np.int64)
        self.ref = np.ascontiguousarray(z)
        # Distances in single precision: half the memory traffic of the one big product per row, and
        # far more precision than a threshold needs.
        z32 = z.astype(np.float32)
        self.ref_t = np.ascontiguousarray(z32.T)
        self.ref_m2 = np.ascontiguousarray(-2.0 * z32)
        self.ref_sq = np.einsum("ij,ij->i", z32, z32)
        self.mean = z.mean(axis=0)
        self.whiten = _whitening(z)

    @property
    def adversarial(self) -> bool:
        """Whether this index scores rows as adversarial (it has `predict_proba` and class labels)."""
        return self.predict_proba is not None

    def components(self, x: Array) -> tuple[Array, Array]:
        """The scaled rows of `x` (shape (m, d), finite) and their raw ``knn`` and ``mahalanobis`` scores,
        shape (m, 2)."""
        z = self.scaling(x)
        m = z.shape[0]
        out = np.empty((m, 2))
        if m == 1:  # the single-row hot path: 1-D arrays, Python floats for the k smallest
            row = z[0].astype(np.float32)
            d2 = self.ref_m2 @ row
            d2 += self.ref_sq
            d2 += row @ row
            part = np.partition(d2, self.k - 1)[: self.k].tolist()
            out[0, 0] = sum(math.sqrt(max(v, 0.0)) for v in part) / self.k
        else:
            for start, d2 in self._blocks(z):
                out[start : start + d2.shape[0], 0] = _mean_smallest(d2, self.k)
        centred = (z - self.mean) @ self.whiten
        out[:, 1] = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        return z, out

    def ratio(self, x: Array, z: Array) -> Array:
        """The raw ``adversarial`` score of rows `x` (scaled: `z`): the share of their `k` nearest
        reference rows whose label is not the class the model gives them."""
        predicted = self._predict(x)
        out = np.empty(x.shape[0])
        for start, d2 in self._blocks(z):
            out[start : start + d2.shape[0]] = self._disagreement(d2, predicted[start : start + d2.shape[0]])
        return out

    def _blocks(self, z: Array) -> Iterator[tuple[int, Array]]:
        """Squared distances from the rows of `z` to every reference row, in blocks of bounded size."""
        step = max(1, _BLOCK // self.ref.shape[0])
        for start in range(0, z.shape[0], step):
            block = z[start : start + step].astype(np.float32)
            d2 = self.ref_sq - np.float32(2.0) * (block @ self.ref_t)
            d2 += np.einsum("ij,ij->i", block, block)[:, None]
            np.maximum(d2, 0.0, out=d2)
            yield start, d2

    def _predict(self, x: Array) -> Array:
        if self.predict_proba is None:
            raise GuardError("predict_proba: not given at fit, so there is no adversarial score")
        try:
            proba = np.asarray(self.predict_proba(x), dtype=np.float64)
        except Exception as exc:
            raise GuardError(f"predict_proba: failed on a batch of {x.shape[0]} rows: {exc}") from exc
        if proba.ndim != 2 or proba.shape != (x.shape[0], self.n_classes):
            raise GuardError(
                f"predict_proba: returned shape {proba.shape} for {x.shape[0]} rows; expected "
                f"({x.shape[0]}, {self.n_classes}), one column per class"
            )
        return np.asarray(proba.argmax(axis=1))

    def _disagreement(self, d2: Array, predicted: Array) -> Array:
        k = self.k
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k] if d2.shape[1] > k else np.argsort(d2, axis=1)
        agree = (self.ref_labels[nearest] == predicted[:, None]).mean(axis=1)
        return np.asarray(1.0 - agree)


def _mean_smallest(d2: Array, k: int) -> Array:
    if k == 1:
        return np.asarray(np.sqrt(d2.min(axis=1)))
    part = np.partition(d2, k - 1, axis=1)[:, :k]
    return np.asarray(np.sqrt(part).mean(axis=1))


def _whitening(z: Array) -> Array:
    """A matrix W with ||(z - mean) W|| the Mahalanobis distance under a Ledoit-Wolf shrunk covariance."""
    from sklearn.covariance import LedoitWolf

    precision = LedoitWolf(assume_centered=False).fit(z).precision_
    values, vectors = np.linalg.eigh((precision + precision.T) / 2.0)
    return np.asarray(vectors * np.sqrt(np.maximum(values, 0.0)))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Each raw score's threshold, the target false-positive rate, and the rate measured on held-out rows.

    `measured_fpr` is the share of the `rows` held-out clean rows over the line (``knn`` and
    ``mahalanobis`` together). `thresholds["adversarial"]`, when there is one, is the `1 - fpr`
    quantile of the adversarial score on the same rows, at least one half, and at most halfway between
    ``(k - 1) / k`` and 1 for `k` neighbours: a row whose every neighbour disagrees with the model is
    always over it.
    """

    thresholds: Mapping[str, float]
    fpr: float
    measured_fpr: float
    rows: int
    inverse: Array = field(repr=False, compare=False)

    def normalised(self, raw: Array) -> Array:
        """Raw ``knn`` and ``mahalanobis`` scores (m, 2) as multiples of their thresholds."""
        return np.asarray(raw * self.inverse)


def calibrate(
    raw: Array, *, fpr: float, adversarial: Array | None = None, neighbours: int = 1
) -> Calibration:
    """Thresholds under which a `1 - fpr` share of held-out clean rows stay, both OOD scores together.

    Each score is first put on a common footing (divided by its own `1 - fpr`
    quantile), the larger of the two is the row's overall score, and one factor
    is chosen so that the overall score's `1 - fpr` quantile is 1. `neighbours` is the `k` behind the
    `adversarial` scores (shares of `k` neighbours: multiples of `1 / k`).
    """
    base = np.quantile(raw, 1.0 - fpr, axis=0)
    base = np.where(base > 0, base, np.maximum(raw.max(axis=0), 1e-12))
    overall = (raw / base).max(axis=1)
    factor = float(np.quantile(overall, 1.0 - fpr, method="higher"))
    factor = factor if factor > 0 else 1.0
    thresholds = base * factor
    named = {"knn": float(thresholds[0]), "mahalanobis": float(thresholds[1])}
    if adversarial is not None:
        # Over the line means: more of the neighbours disagree with the model than in a `1 - fpr` share of
        # clean rows, and more than half of them (clean training rows mostly have no disagreement at all).
        # When more than `fpr` of the clean rows disagree with every neighbour (a 1-nearest-neighbour guard
        # on a model with a few percent of errors), that quantile is 1.0 and nothing could exceed it: the
        # cap halfway below 1 keeps "every neighbour disagrees" over the line. This only reads rows already
        # over the out-of-distribution line, so it cannot raise the clean false-positive rate above `fpr`.
        quantile = float(np.quantile(adversarial, 1.0 - fpr, method="higher"))
        named["adversarial"] = min(max(quantile, 0.5), 1.0 - 0.5 / max(neighbours, 1))
    return Calibration(
        thresholds=named,
        fpr=fpr,
        measured_fpr=float((overall > factor).mean()),
        rows=int(raw.shape[0]),
        inverse=1.0 / thresholds,
    )
