"""Label flips: rows whose label the rest of the data contradicts.

Every row is scored by models that never saw it (k-fold cross-fitting) and that disagree with each
other in how they generalise: a linear model, a kernel machine, nearest neighbours and a forest of
randomised trees on up to `SMALL_ROWS` rows; above it, a vote of each row's `GRAPH_VOTERS` nearest
rows of the screen's one neighbour search (a sample of `SMALL_ROWS` rows) that lie outside the row's
fold. The average of their probabilities is taken twice: once on all rows, then again with the rows
the first pass contradicted left out of training, so that planted labels stop teaching the models their
lie (flips near the decision boundary bend it otherwise).

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

from pipewarden.data._screen._neighbors import Neighbours, neighbours

__all__ = ["LabelScores", "score_labels"]

logger = logging.getLogger(__name__)

SMALL_ROWS = 20_000
FOLDS = 5
#: Above SMALL_ROWS: how many nearest rows the one neighbour search keeps per row, and how many of those
#: outside the row's fold (and, on the second pass, not suspect) vote on its label.
GRAPH_NEIGHBOURS = 30
GRAPH_VOTERS = 10
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


def _models(seed: int) -> list[object]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return [
        LogisticRegression(max_iter=2000, C=1.0),
        CalibratedClassifierCV(SVC(C=10.0, random_state=seed), ensemble=False, cv=3),
        KNeighborsClassifier(n_neighbors=10, weights="distance"),
        ExtraTreesClassifier(n_estimators=200, min_samples_leaf=2, n_jobs=2, random_state=seed),
    ]


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
    models = _models(seed)
    for number in range(folds):
        test = np.flatnonzero(fold == number)
        train = np.flatnonzero((fold != number) & train_mask)
        if len(test) == 0:
            continue
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


def _graph_vote(
    graph: Neighbours, y: np.ndarray, classes: int, *, train_mask: np.ndarray, fold: np.ndarray
) -> np.ndarray:
    """Out-of-fold class probabilities above SMALL_ROWS: each row's nearest rows from the one neighbour
    search, kept only outside its fold and in `train_mask`, the first GRAPH_VOTERS of them voting with
    weight 1 / distance (as a distance-weighted nearest-neighbour classifier does). Fitting a model per
    fold and pass on that many rows costs minutes on 2 cores; the vote costs milliseconds, and nearest
    neighbours on a sample that large are as accurate on big tables as the slower models."""
    index, distance = graph.index, graph.distance
    usable = (fold[index] != fold[:, None]) & train_mask[index]
    usable &= np.cumsum(usable, axis=1) <= GRAPH_VOTERS
    # A zero distance (an exact copy in another fold) outweighs the rest, as in scikit-learn's weighting.
    weight = np.where(usable, 1.0 / np.maximum(distance, 1e-12), 0.0)
    voted = y[index]
    proba = np.stack([(weight * (voted == c)).sum(axis=1) for c in range(classes)], axis=1)
    total = proba.sum(axis=1, keepdims=True)
    prior = np.bincount(y[train_mask], minlength=classes) / max(int(train_mask.sum()), 1)
    # A row none of whose neighbours may vote (all in its fold or suspect) gets the training rows' prior.
    return np.where(total > 0, proba / np.where(total > 0, total, 1.0), prior)


def _wrong_label(q: np.ndarray, y: np.ndarray, share: float) -> np.ndarray:
    """How likely each row's given label is under the wrong-label part of the noise model: a wrong label
    lands on class l either uniformly among the other classes or, near the boundary, in proportion to
    how close the features come to l (summed over true classes c != l)."""
    n, k = q.shape
    rows = np.arange(n)
    q_given = q[rows, y]
    uniform = (1.0 - q_given) / (k - 1)
    ratio = q / np.clip(1.0 - q, _EPS, None)
    runner_up = q_given * (ratio.sum(axis=1) - ratio[rows, y])
    result: np.ndarray = share * runner_up + (1.0 - share) * uniform
    return result


def _tempered(logp: np.ndarray, temperature: float) -> np.ndarray:
    q = np.exp((logp - logp.max(axis=1, keepdims=True)) / temperature)
    result: np.ndarray = q / q.sum(axis=1, keepdims=True)
    return result


def _noise_model(proba: np.ndarray, y: np.ndarray, *, seed: int) -> tuple[float, float, float, np.ndarray]:
    """Fit (temperature, rho, runner-up share) by maximum likelihood; return them and each row's
    posterior probability of carrying a wrong label. Above SMALL_ROWS rows the three numbers are fitted
    on a random SMALL_ROWS of them (they are the same to two digits) and the posterior computed for all."""
    n = len(y)
    fit = np.arange(n)
    if n > SMALL_ROWS:
        fit = np.sort(np.random.default_rng(seed).choice(n, SMALL_ROWS, replace=False))
    logp_all = np.log(np.clip(proba, _EPS, 1.0))
    logp, given = logp_all[fit], y[fit]
    best: tuple[float, float, float, float] | None = None
    rhos = np.linspace(0.0, 0.45, 46)
    for temperature in np.exp(np.linspace(np.log(0.1), np.log(3.0), 30)):
        q = _tempered(logp, float(temperature))
        q_given = q[np.arange(len(given)), given]
        for share in (0.0, 0.25, 0.5, 0.75, 1.0):
            wrong = _wrong_label(q, given, share)
            likelihood = np.log((1.0 - rhos[:, None]) * q_given + rhos[:, None] * wrong + 1e-300).sum(axis=1)
            j = int(np.argmax(likelihood))
            if best is None or likelihood[j] > best[0]:
                best = (float(likelihood[j]), float(temperature), float(rhos[j]), share)
    if best is None:  # never: the grids are not empty
        raise ValueError("noise model: nothing fitted")
    _, temperature, rho, share = best
    q = _tempered(logp_all, temperature)
    noisy = rho * _wrong_label(q, y, share)
    posterior = noisy / (noisy + (1.0 - rho) * q[np.arange(n), y] + 1e-300)
    return temperature, rho, share, posterior


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
    x: np.ndarray,
    raw: np.ndarray,
    y: np.ndarray,
    *,
    fpr: float,
    seed: int,
    groups: np.ndarray | None = None,
    graph: Neighbours | None = None,
) -> LabelScores:
    """Score every row's label (see the module docstring). `x` is scaled, `raw` in the data's units;
    `groups` (a group's first row, per row) keeps near-duplicates in one fold; `graph`, above SMALL_ROWS,
    is the screen's neighbour search with at least GRAPH_NEIGHBOURS per row (searched here without it)."""
    classes = int(y.max()) + 1
    n = len(y)
    rows = np.arange(n)
    everyone = np.ones(n, dtype=bool)
    fold, folds = _folds(y, groups, seed)
    if n > SMALL_ROWS:
        search = graph
        if search is None or search.index.shape[1] < GRAPH_NEIGHBOURS:
            search = neighbours(x, k=GRAPH_NEIGHBOURS, seed=seed)

        def probabilities(train_mask: np.ndarray, _seed: int) -> np.ndarray:
            return _graph_vote(search, y, classes, train_mask=train_mask, fold=fold)

    else:

        def probabilities(train_mask: np.ndarray, _seed: int) -> np.ndarray:
            return _cross_fit(x, y, classes, train_mask=train_mask, fold=fold, folds=folds, seed=_seed)

    first = probabilities(everyone, seed)
    first_given = first[rows, y]
    suspects = first.max(axis=1) > first_given * DISAGREEMENT_ODDS + _EPS
    second = probabilities(~suspects, seed + 1)
    given = second[rows, y]
    others = second.copy()
    others[rows, y] = -1.0
    top_other = others.max(axis=1)
    top_class = second.argmax(axis=1)
    disagreement = top_other > given * DISAGREEMENT_ODDS + _EPS
    temperature, rho, share, posterior = _noise_model(second, y, seed=seed)
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
