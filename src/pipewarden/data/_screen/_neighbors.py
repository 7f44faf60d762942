"""Nearest neighbours by brute force (scikit-learn's chunked, multi-threaded search), bounded in memory.

Exact up to `EXACT_ROWS` rows; above it, each row's neighbours are searched among a fixed random sample
of `EXACT_ROWS` rows, drawn from the seed and the data's own digest (and the row itself is never its
own neighbour). The sample keeps the screen at seconds on 100k rows while the distances still measure
how crowded a row's neighbourhood is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EXACT_ROWS", "Neighbours", "neighbours"]

EXACT_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Neighbours:
    """`index[i]` holds the rows nearest to row i (row numbers of the input), `distance[i]` their distances,
    nearest first."""

    index: np.ndarray  # (n, k) int64
    distance: np.ndarray  # (n, k) float64
    exact: bool

    def nearest(self, k: int) -> Neighbours:
        """The same search cut to each row's `k` nearest."""
        return Neighbours(index=self.index[:, :k], distance=self.distance[:, :k], exact=self.exact)


def _sampler(points: np.ndarray, seed: int) -> np.random.Generator:
    """The random source of the sample: the seed and a digest of the rows themselves. The same data and
    seed give the same sample; a person planting rows cannot know in advance which positions it will
    hold (with the seed alone, rows planted where the sample falls would be every other row's judge)."""
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(points).tobytes(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def neighbours(points: np.ndarray, *, k: int, seed: int = 0, sample: int = EXACT_ROWS) -> Neighbours:
    """The `k` nearest other rows of every row of `points`, searched among all rows up to `sample` rows and
    among a fixed random sample of `sample` rows above it."""
    from sklearn.neighbors import NearestNeighbors

    n = points.shape[0]
    candidates = np.arange(n)
    exact = n <= sample
    if not exact:
        candidates = np.sort(_sampler(points, seed).choice(n, sample, replace=False))
    k = max(1, min(k, len(candidates) - 1))
    # Single precision halves the cost; distances to 7 digits are plenty to rank neighbours.
    points = points.astype(np.float32, copy=False)
    search = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(points[candidates])
    distance, found = search.kneighbors(points, return_distance=True)
    index = candidates[found]
    # Drop each row itself where it is among its candidates (exact duplicates may come first, so look for
    # the row's own number, not the first column); rows that are not keep their k nearest.
    own = index == np.arange(n)[:, None]
    has_self = own.any(axis=1)
    drop = np.where(has_self, own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    return Neighbours(
        index=index[keep].reshape(n, k).astype(np.int64),
        distance=distance[keep].reshape(n, k).astype(np.float64),
        exact=exact,
    )
