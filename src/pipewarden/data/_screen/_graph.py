"""Connected components of rows or columns joined in pairs (near-duplicates, a trigger's features)."""

from __future__ import annotations

import numpy as np

__all__ = ["first_members"]


def first_members(nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For each of `nodes` nodes, the smallest node of its connected component, where pair i joins
    `left[i]` and `right[i]`; a node in no pair is its own component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = coo_matrix(
        (np.ones(len(left), dtype=np.int8), (np.asarray(left), np.asarray(right))), shape=(nodes, nodes)
    )
    count, component = connected_components(edges, directed=False)
    first = np.full(count, nodes, dtype=np.int64)
    np.minimum.at(first, component, np.arange(nodes))
    result: np.ndarray = first[component]
    return result
