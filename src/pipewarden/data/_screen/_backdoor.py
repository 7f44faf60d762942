"""Backdoor triggers: a small pattern of rare values, stamped on rows that all carry one label.

A backdoor is planted by setting a few features to values the data rarely has (a bright patch in a
corner of an image, a magic number in a column) on some rows, and giving those rows the attacker's
label; a model trained on them learns "pattern means that label". The check (`PW-DATA-231`) looks for
exactly that, in three steps:
1. a cell is *rare* when it lies far outside its column's bulk (robust z beyond the rate's tail);
2. a pair of features whose rare cells co-occur on at least `MIN_SUPPORT` rows that share one label far
   more often than that label's share of the data (a binomial test, Bonferroni-corrected over the pairs
   tried) is a candidate; candidate pairs with the same label join into one pattern;
3. the pattern is stamped, not grown: on the rows that carry it, each of its features holds one and the
   same value on at least `STAMPED` of them (a natural stroke or a heavy tail varies; a patch or a magic
   number does not);
4. the pattern is a trigger, not a genuine trait of its class, when the rest of each carrying row says
   otherwise: its nearest rows among those without the pattern, compared on every feature outside the
   pattern, mostly carry another label. Those rows are flagged, with the pattern's features named.
For image-like arrays the pattern is reported with pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from pipewarden.data._screen._calibrate import upper_threshold
from pipewarden.data._screen._graph import first_members

__all__ = ["Trigger", "find_triggers"]

MIN_SUPPORT = 5
STAMPED = 0.9
K = 10
_MAX_PAIRS = 5_000


@dataclass(frozen=True, slots=True)
class Trigger:
    features: tuple[int, ...]  # column numbers of the pattern
    label: int  # the label the pattern carries
    rows: np.ndarray  # rows flagged: carry the pattern and the label, and their other features disagree
    carriers: int  # rows that carry the pattern at all
    p_value: float  # the strongest pair's binomial tail probability
    other_label_share: np.ndarray  # per flagged row: share of its pattern-blind neighbours with another label


def _rare_cells(raw: np.ndarray, fpr: float) -> np.ndarray:
    centre = np.median(raw, axis=0)
    q75, q25 = np.percentile(raw, [75, 25], axis=0)
    spread = (q75 - q25) / 1.349
    std = raw.std(axis=0)
    spread = np.where(spread > 0, spread, np.where(std > 0, std, np.inf))
    rare: np.ndarray = np.abs(raw - centre) / spread > upper_threshold(fpr)
    return rare


def _stamp(raw: np.ndarray, rows: np.ndarray, columns: tuple[int, ...]) -> np.ndarray | None:
    """The pattern's values when at least `STAMPED` of `rows` hold one same value in every column."""
    if len(rows) < MIN_SUPPORT:
        return None
    values = raw[np.ix_(rows, np.array(columns))]
    stamp = np.empty(len(columns))
    for j in range(len(columns)):
        kinds, counts = np.unique(values[:, j], return_counts=True)
        if counts.max() < STAMPED * len(rows):
            return None
        stamp[j] = kinds[counts.argmax()]
    return stamp


def _components(pairs: list[tuple[int, int]]) -> list[tuple[int, ...]]:
    """The groups of columns that the pairs join, each sorted, in the order of their smallest column."""
    left = np.array([a for a, _ in pairs], dtype=np.int64)
    right = np.array([b for _, b in pairs], dtype=np.int64)
    columns = np.unique(np.concatenate([left, right]))
    first = first_members(int(columns.max()) + 1, left, right)[columns]
    return [tuple(int(c) for c in columns[first == root]) for root in np.unique(first)]


def _blind_vote(
    x: np.ndarray, labels: np.ndarray, rows: np.ndarray, pool: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """For each row in `rows`, the share of its K nearest rows in `pool` (features `keep` only) whose label
    differs from its own."""
    a = x[np.ix_(rows, keep)]
    b = x[np.ix_(pool, keep)]
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    k = min(K, len(pool))
    near = np.argpartition(d2, k - 1, axis=1)[:, :k]
    share: np.ndarray = np.mean(labels[pool][near] != labels[rows][:, None], axis=1)
    return share


def find_triggers(
    raw: np.ndarray, x: np.ndarray, labels: np.ndarray, *, fpr: float, seed: int, pool_rows: int = 20_000
) -> list[Trigger]:
    n, d = raw.shape
    rare = _rare_cells(raw, fpr)
    counts = rare.sum(axis=0)
    columns = np.flatnonzero(counts >= MIN_SUPPORT)
    if len(columns) < 2:
        return []
    sub = rare[:, columns].astype(np.float32)
    together = sub.T @ sub
    ii, jj = np.nonzero(np.triu(together >= MIN_SUPPORT, k=1))
    if len(ii) > _MAX_PAIRS:
        keep = np.argsort(-together[ii, jj], kind="stable")[:_MAX_PAIRS]
        ii, jj = ii[keep], jj[keep]
    tried = max(len(ii), 1)
    base = np.bincount(labels, minlength=int(labels.max()) + 1) / n
    significant: dict[int, list[tuple[int, int, float]]] = {}
    stamped: dict[tuple[int, int], float] = {}  # (label, column) -> the value stamped there
    for a, b in zip(ii.tolist(), jj.tolist(), strict=True):
        carrying = rare[:, columns[a]] & rare[:, columns[b]]
        found = np.bincount(labels[carrying], minlength=len(base))
        top = int(found.argmax())
        # P(at least this many of the carriers share the label by chance), Bonferroni over the pairs.
        p = float(binom.sf(found[top] - 1, int(carrying.sum()), base[top]))
        if p * tried < fpr and found[top] >= MIN_SUPPORT:
            labelled = np.flatnonzero(carrying & (labels == top))
            pair = (int(columns[a]), int(columns[b]))
            values = _stamp(raw, labelled, pair)
            if values is not None:
                significant.setdefault(top, []).append((*pair, p))
                for column, value in zip(pair, values.tolist(), strict=True):
                    stamped.setdefault((top, column), value)
    triggers: list[Trigger] = []
    rng = np.random.default_rng(seed)
    for label, pairs in sorted(significant.items()):
        for pattern in _components([(a, b) for a, b, _ in pairs]):
            cols = np.array(pattern)
            need = max(2, int(np.ceil(len(cols) / 2)))
            # Every pair in the pattern was stamped; the stamp is the value each pair's carriers shared.
            stamp = np.array([stamped[(label, int(c))] for c in cols])
            # Carriers hold the stamp's own values on at least half the pattern.
            carriers = np.flatnonzero((raw[:, cols] == stamp).sum(axis=1) >= need)
            labelled = carriers[labels[carriers] == label]
            if len(labelled) < MIN_SUPPORT:
                continue
            keep = np.setdiff1d(np.arange(d), cols)
            if len(keep) == 0:
                continue
            pool = np.setdiff1d(np.arange(n), carriers)
            if len(pool) > pool_rows:
                pool = np.sort(rng.choice(pool, pool_rows, replace=False))
            if len(pool) < K:
                continue
            other = _blind_vote(x, labels, labelled, pool, keep)
            # A trigger when most carriers' other features say another label; then flag those that do.
            if float(np.median(other)) <= 0.5:
                continue
            flagged = other > 0.5
            best_p = min(p for a, b, p in pairs if a in pattern and b in pattern)
            triggers.append(
                Trigger(
                    features=tuple(int(c) for c in cols),
                    label=int(label),
                    rows=labelled[flagged],
                    carriers=len(carriers),
                    p_value=best_p,
                    other_label_share=other[flagged],
                )
            )
    return triggers
