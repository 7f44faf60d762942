"""Nearest neighbours by brute force over BLAS, in chunks of bounded memory.

Exact up to `EXACT_ROWS` rows; above it, each row's neighbours are searched among a fixed random sample
of `EXACT_ROWS` rows (and the row itself is never its own neighbour). The sample keeps the screen at a
few seconds on 100k rows while the distances still measure how crowded a row's neighbourhood is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EXACT_ROWS", "Neighbours", "neighbours"]

EXACT_ROWS = 20_000
_CHUNK_CELLS = 16_000_000  # distances held at once: 128 MB of float64


@dataclass(frozen=True, slots=True)
class Neighbours:
    """`index[i]` holds the rows nearest to row i (row numbers of the input), `distance[i]` their distances,
    nearest first."""

    index: np.ndarray  # (n, k) int64
    distance: np.ndarray  # (n, k) float64
    exact: bool


def neighbours(points: np.ndarray, *, k: int, seed: int = 0, within: np.ndarray | None = None) -> Neighbours:
    """The `k` nearest other rows of every row of `points`; `within` (row numbers) limits the candidates."""
    n = points.shape[0]
    candidates = np.arange(n) if within is None else np.asarray(within, dtype=np.int64)
    exact = len(candidates) <= EXACT_ROWS
    if not exact:
        rng = np.random.default_rng(seed)
        candidates = np.sort(rng.choice(candidates, EXACT_ROWS, replace=False))
    k = max(1, min(k, len(candidates) - 1))
    ref = points[candidates]
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    index = np.empty((n, k), dtype=np.int64)
    distance = np.empty((n, k), dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(len(candidates), 1))
    for start in range(0, n, step):
        block = points[start : start + step]
        sq = np.einsum("ij,ij->i", block, block)
        d2 = sq[:, None] + ref_sq[None, :] - 2.0 * (block @ ref.T)
        np.maximum(d2, 0.0, out=d2)
        rows = np.arange(start, start + len(block))
        # A row is never its own neighbour.
        own = np.searchsorted(candidates, rows)
        hit = (own < len(candidates)) & (candidates[np.minimum(own, len(candidates) - 1)] == rows)
        d2[np.flatnonzero(hit), own[hit]] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.argsort(d2, axis=1)[:, :k]
        part_d = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(part_d, axis=1)
        index[start : start + len(block)] = candidates[np.take_along_axis(part, order, axis=1)]
        distance[start : start + len(block)] = np.sqrt(np.take_along_axis(part_d, order, axis=1))
    return Neighbours(index=index, distance=distance, exact=exact)
