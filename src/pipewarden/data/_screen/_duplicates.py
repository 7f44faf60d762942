"""Near-duplicates: copies of real rows, planted with another label or in floods.

Two rows are near-duplicates when their distance is far below the distance between ordinary
neighbours: the log of each row's nearest-neighbour distance is compared with its median and spread,
and pairs closer than the false-positive rate's lower tail are joined into groups. A group then raises:
- `PW-DATA-221` (mislabelled near-copy): its members disagree on the label; the members whose label
  their neighbours outside the group mostly reject are flagged (the copy, not the row it copied) when
  another member's label is mostly supported; a group without neighbours outside it decides nothing;
- `PW-DATA-222` (duplicate flood): more rows lie within the radius of one row than `MIN_FLOOD`, or, where
  near-duplicates are common (20 groups or more), than the upper tail of the groups' counts at the rate
  asked for; every one of them but that first row is flagged.
The groups are also handed to the label check, whose cross-fitting keeps a group in one fold, so that
a copy never vouches for its own original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipewarden.data._screen._calibrate import robust_z, upper_threshold
from pipewarden.data._screen._graph import first_members
from pipewarden.data._screen._neighbors import EXACT_ROWS, Neighbours

__all__ = ["DuplicateScores", "find_duplicates"]

MIN_FLOOD = 5
_CALIBRATE_GROUPS = 20
_PROJECTIONS = 6
_WINDOW = 4


@dataclass(frozen=True, slots=True)
class DuplicateScores:
    group: np.ndarray  # (n,) group id; rows in no group have their own id
    group_size: np.ndarray  # (n,)
    nearest: np.ndarray  # (n,) distance to the nearest other row found
    radius: float  # the near-duplicate distance
    mislabelled: np.ndarray  # (n,) bool
    support: np.ndarray  # (n,) share of the row's outside neighbours with its label (NaN if none)
    flood: np.ndarray  # (n,) bool
    flood_size: int
    partner: np.ndarray  # (n,) the nearest other row of the same group (-1 outside any group)
    star: np.ndarray  # (n,) rows within the radius of the row's group's first row (0 outside any group)
    floods_judged: bool  # False where most rows repeat and groups are too few to calibrate a limit


def _candidate_pairs(
    x: np.ndarray, found: Neighbours, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(x)
    if found.exact:
        left = np.repeat(np.arange(n), found.index.shape[1])
        return left, found.index.ravel(), found.distance.ravel()
    # Above EXACT_ROWS the neighbour search is sampled; close pairs are found instead as neighbours in
    # the order of a few random projections (two near-copies stay close along every direction).
    rng = np.random.default_rng(seed)
    x = x.astype(np.float32)
    lefts, rights, distances = [], [], []
    for _ in range(_PROJECTIONS):
        order = np.argsort(x @ rng.standard_normal(x.shape[1]), kind="stable")
        ordered = x[order]
        for step in range(1, _WINDOW + 1):
            lefts.append(order[:-step])
            rights.append(order[step:])
            # One step at a time: the differences of every pair at once would take gigabytes.
            gap = ordered[:-step] - ordered[step:]
            distances.append(np.sqrt(np.einsum("ij,ij->i", gap, gap)))
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(distances).astype(np.float64)


def find_duplicates(
    x: np.ndarray, labels: np.ndarray | None, found: Neighbours, *, fpr: float, seed: int
) -> DuplicateScores:
    n = len(x)
    nearest_sampled = found.distance[:, 0]
    logs = np.log(nearest_sampled + 1e-12)
    z = robust_z(logs, side="lower")
    cut = upper_threshold(fpr)
    # The radius is where the lower tail of ordinary nearest-neighbour distances ends.
    del z
    centre = float(np.median(logs))
    radius = float(np.exp(centre - cut * (centre - float(np.quantile(logs, 0.25))) / 0.6745))
    if not found.exact:
        radius *= (EXACT_ROWS / n) ** (1.0 / max(x.shape[1], 1))
    left, right, distance = _candidate_pairs(x, found, seed)
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, left, distance)
    np.minimum.at(nearest, right, distance)
    close = distance < radius
    group = first_members(n, left[close], right[close])
    size = np.bincount(group, minlength=n)[group]
    mislabelled = np.zeros(n, dtype=bool)
    support = np.full(n, np.nan)
    multi = np.flatnonzero(size > 1)
    if labels is not None and len(multi):
        for i in multi:
            outside = found.index[i][group[found.index[i]] != group[i]]
            if len(outside):
                support[i] = float(np.mean(labels[outside] == labels[i]))
        for g in np.unique(group[multi]):
            members = np.flatnonzero(group == g)
            if len(np.unique(labels[members])) < 2 or np.isnan(support[members]).any():
                # Without neighbours outside the group nothing says which label is right: exact
                # duplicates of discrete data with mixed labels are ordinary label noise, not a copy.
                continue
            scores = support[members]
            # Each label's support is the best its members get; the best-supported label wins, and only a
            # label its own neighbours mostly reject is called a copy's.
            best = {
                int(lab): float(scores[labels[members] == lab].max()) for lab in np.unique(labels[members])
            }
            winner = max(sorted(best), key=lambda lab: best[lab])
            if best[winner] < 0.5:
                continue
            mislabelled[members[(labels[members] != winner) & (scores < 0.5)]] = True
    # A flood is judged by how many rows lie within the radius of one row, the group's first (not by the
    # chained group, in which ordinary close pairs link up). Where near-duplicates are common (discrete
    # data, repeated measurements) the limit is the upper tail of those counts at the rate asked for.
    stars: dict[int, np.ndarray] = {}
    for g in np.unique(group[multi]) if len(multi) else ():
        members = np.flatnonzero(group == g)
        stars[int(g)] = members[np.sqrt(((x[members] - x[g]) ** 2).sum(axis=1)) < radius]
    flood_size = MIN_FLOOD
    # Where most rows have a near-twin (a few discrete columns, a constant table), repeats are how the
    # data looks, and with few groups there is no tail to calibrate against: floods are not judged, and
    # the summary says so.
    repeats_are_normal = bool(np.mean(size > 1) > 0.5) and len(stars) < _CALIBRATE_GROUPS
    if len(stars) >= _CALIBRATE_GROUPS:
        counts = np.log(np.array([len(v) for v in stars.values()], dtype=float))
        centre = float(np.median(counts))
        spread = max(float(np.quantile(counts, 0.75)) - centre, float(np.log(2.0))) / 0.6745
        flood_size = max(MIN_FLOOD, int(np.ceil(np.exp(centre + cut * spread))))
    flood = np.zeros(n, dtype=bool)
    star = np.zeros(n, dtype=np.int64)
    for g, near in stars.items():
        star[near] = len(near)
        if len(near) > flood_size and not repeats_are_normal:
            flood[near[near != g]] = True
    partner = np.where(size > 1, group, -1)
    for i in np.flatnonzero(size > 1):
        same = found.index[i][group[found.index[i]] == group[i]]
        if len(same):
            partner[i] = same[0]
    return DuplicateScores(
        group=group,
        group_size=size,
        nearest=nearest,
        radius=radius,
        mislabelled=mislabelled,
        support=support,
        flood=flood,
        flood_size=flood_size,
        partner=partner,
        star=star,
        floods_judged=not repeats_are_normal,
    )
