"""Label flips: rows whose label the rest of the data contradicts.

Every row is scored by models that never saw it (k-fold cross-fitting) and that disagree with each
other in how they generalise: a linear model, a kernel machine, nearest neighbours and a forest of
randomised trees on up to `SMALL_ROWS` rows; above it, nearest neighbours among a sample of
`SMALL_ROWS` rows of each fold's training part. The average of their
probabilities is taken twice: once on all rows, then again with the rows the first pass contradicted
left out of training, so that planted labels stop teaching the models their lie (flips near the
decision boundary bend it otherwise).

Two rules decide, on the second pass:
- **noise model** (`PW-DATA-201`): a model of how labels go wrong (a share `rho` of rows relabelled,
  at random or to the class the features come closest to) is fitted by maximum likelihood with a
  temperature that calibrates the probabilities. It gives each row the posterior probability that its
  label is wrong; rows are flagged from the most suspect down while the expected share of clean rows
  among all clean rows stays within the false-positive rate asked for, and only while that posterior
  is above one half.
- **disagreement** (`PW-DATA-202`): the cross-fitted ensemble, trained without the suspects, predicts
  another class at least `DISAGREEMENT_ODDS` times as likely as the given one. This catches flips the
  noise model cannot tell from honest ambiguity (labels moved to the neighbouring class near the
  boundary); its false-positive rate is the ensemble's own error on clean rows, which the screen
  estimates and reports.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["LabelScores", "score_labels"]

logger = logging.getLogger(__name__)

SMALL_ROWS = 20_000
FOLDS = 5
DISAGREEMENT_ODDS = 2.0
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class LabelScores:
    """Per row: the cross-fitted probability of its label and of the likeliest class, and the noise
    posterior; which rows each rule flags; the fitted noise model."""

    given: np.ndarray  # (n,) probability of the row's own label
    top_class: np.ndarray  # (n,) the likeliest class code
    top: np.ndarray  # (n,) its probability
    posterior: np.ndarray  # (n,) probability that the label is wrong, from the noise model
    noise_flagged: np.ndarray  # (n,) bool
    disagreement_flagged: np.ndarray  # (n,) bool
    noise_rate: float
    temperature: float
    runner_up_share: float
    estimated_clean_error: float  # the ensemble's estimated error rate on clean rows


def _models(n: int, seed: int) -> list[object]:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if n <= SMALL_ROWS:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        return [
            LogisticRegression(max_iter=2000, C=1.0),
            CalibratedClassifierCV(SVC(C=10.0, random_state=seed), ensemble=False, cv=3),
            KNeighborsClassifier(n_neighbors=10, weights="distance"),
            ExtraTreesClassifier(n_estimators=200, min_samples_leaf=2, n_jobs=2, random_state=seed),
        ]
    # Above SMALL_ROWS, fitting the others on every fold costs minutes on 2 cores; nearest neighbours on a
    # sample of SMALL_ROWS rows are as accurate on large tables as gradient-boosted trees and cost seconds.
    return [KNeighborsClassifier(n_neighbors=10, weights="distance", algorithm="brute")]


def _folds(y: np.ndarray, groups: np.ndarray | None, seed: int) -> tuple[np.ndarray, int]:
    """A fold per row, stratified by label; rows of one near-duplicate group share their first row's fold."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    folds = int(min(FOLDS, max(2, counts[counts > 0].min())))
    fold = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A class with fewer rows than folds is legal here: the warning would only repeat it.
        warnings.simplefilter("ignore", UserWarning)
        for number, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
            fold[test] = number
    if groups is not None:
        fold = fold[groups]
    return fold, folds


def _cross_fit(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    *,
    train_mask: np.ndarray,
    fold: np.ndarray,
    folds: int,
    seed: int,
) -> np.ndarray:
    from sklearn.base import clone

    n = len(y)
    proba = np.zeros((n, classes))
    models = _models(n, seed)
    for number in range(folds):
        test = np.flatnonzero(fold == number)
        train = np.flatnonzero((fold != number) & train_mask)
        if len(test) == 0:
            continue
        if len(train) > SMALL_ROWS:
            # Above SMALL_ROWS each fold trains on a fixed sample of its rows: the screen stays at
            # seconds on 100k rows, and a sample that large still learns every class's shape.
            train = np.sort(np.random.default_rng(seed + number).choice(train, SMALL_ROWS, replace=False))
        present = np.unique(y[train])
        if len(present) < 2:
            proba[test] = np.bincount(y[train], minlength=classes) / max(len(train), 1)
            continue
        fitted_any = 0
        part = np.zeros((len(test), classes))
        for model in models:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # a class smaller than the folds: legal
                    fitted = clone(model).fit(x[train], y[train])
                    part[:, fitted.classes_] += fitted.predict_proba(x[test])
            except ValueError as exc:
                # A model that cannot fit this fold (a class with fewer rows than its own inner folds or
                # neighbours) sits it out; the others still score the rows.
                logger.debug("label check: %s skipped a fold: %s", type(model).__name__, exc)
                continue
            fitted_any += 1
        if fitted_any:
            proba[test] = part / fitted_any
        else:
            proba[test] = np.bincount(y[train], minlength=classes) / max(len(train), 1)
    return proba


def _noise_model(proba: np.ndarray, y: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Fit (temperature, rho, runner-up share) by maximum likelihood; return them and each row's
    posterior probability of carrying a wrong label."""
    n, k = proba.shape
    rows = np.arange(n)
    logp = np.log(np.clip(proba, _EPS, 1.0))
    best: tuple[float, float, float, float, np.ndarray] | None = None
    rhos = np.linspace(0.0, 0.45, 46)
    for temperature in np.exp(np.linspace(np.log(0.1), np.log(3.0), 30)):
        q = np.exp((logp - logp.max(axis=1, keepdims=True)) / temperature)
        q /= q.sum(axis=1, keepdims=True)
        q_given = q[rows, y]
        # A wrong label lands on class l either uniformly among the other classes or, near the
        # boundary, in proportion to how close the features come to l: sum over true classes c != l.
        uniform = (1.0 - q_given) / (k - 1)
        ratio = q / np.clip(1.0 - q, _EPS, None)
        runner_up = q_given * (ratio.sum(axis=1) - ratio[rows, y])
        for share in (0.0, 0.25, 0.5, 0.75, 1.0):
            wrong = share * runner_up + (1.0 - share) * uniform
            likelihood = np.log((1.0 - rhos[:, None]) * q_given + rhos[:, None] * wrong + 1e-300).sum(axis=1)
            j = int(np.argmax(likelihood))
            if best is None or likelihood[j] > best[0]:
                rho = float(rhos[j])
                noisy = rho * wrong
                posterior = noisy / (noisy + (1.0 - rho) * q_given + 1e-300)
                best = (float(likelihood[j]), float(temperature), rho, share, posterior)
    if best is None:  # never: the grids are not empty
        raise ValueError("noise model: nothing fitted")
    return best[1], best[2], best[3], best[4]


def _select(posterior: np.ndarray, fpr: float) -> np.ndarray:
    """Flag the most suspect rows while the expected false positives stay within `fpr` of clean rows."""
    clean = 1.0 - posterior
    order = np.argsort(-posterior, kind="stable")
    spent = np.cumsum(clean[order]) / max(float(clean.sum()), _EPS)
    count = int(np.searchsorted(spent, fpr, side="right"))
    flagged = np.zeros(len(posterior), dtype=bool)
    flagged[order[:count]] = True
    return flagged & (posterior > 0.5)


def score_labels(
    x: np.ndarray, raw: np.ndarray, y: np.ndarray, *, fpr: float, seed: int, groups: np.ndarray | None = None
) -> LabelScores:
    """Score every row's label (see the module docstring). `x` is scaled, `raw` in the data's units;
    `groups` (a group's first row, per row) keeps near-duplicates in one fold."""
    classes = int(y.max()) + 1
    n = len(y)
    # Large tables are searched by nearest neighbours only, in single precision (see _models).
    features = x.astype(np.float32) if n > SMALL_ROWS else x
    rows = np.arange(n)
    everyone = np.ones(n, dtype=bool)
    fold, folds = _folds(y, groups, seed)
    first = _cross_fit(features, y, classes, train_mask=everyone, fold=fold, folds=folds, seed=seed)
    first_given = first[rows, y]
    suspects = first.max(axis=1) > first_given * DISAGREEMENT_ODDS + _EPS
    second = _cross_fit(features, y, classes, train_mask=~suspects, fold=fold, folds=folds, seed=seed + 1)
    given = second[rows, y]
    others = second.copy()
    others[rows, y] = -1.0
    top_other = others.max(axis=1)
    top_class = second.argmax(axis=1)
    disagreement = top_other > given * DISAGREEMENT_ODDS + _EPS
    temperature, rho, share, posterior = _noise_model(second, y)
    noise = _select(posterior, fpr)
    # Expected clean rows among the disagreements, by the noise model's own accounting.
    clean_weight = float((1.0 - posterior).sum())
    error = float((1.0 - posterior)[disagreement].sum()) / clean_weight if clean_weight > 0 else 0.0
    logger.debug("label noise model: T=%.2f rho=%.2f share=%.2f", temperature, rho, share)
    return LabelScores(
        given=given,
        top_class=top_class,
        top=second.max(axis=1),
        posterior=posterior,
        noise_flagged=noise,
        disagreement_flagged=disagreement & ~noise,
        noise_rate=rho,
        temperature=temperature,
        runner_up_share=share,
        estimated_clean_error=error,
    )
