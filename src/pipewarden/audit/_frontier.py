"""The compact Merkle frontier: the tree head of a growing log without keeping its leaves.

An append-only tree over n leaves is, at any moment, one complete subtree per
binary digit of n (RFC 9162, 2.1.1: the tree splits at the largest power of two
below n). Keeping only those subtree roots, largest first, lets a writer add a
leaf in amortised O(1) hashing and fold the head in O(log n), so checkpoints and
verification never re-read or hold the whole log.
"""

from __future__ import annotations

from pipewarden.audit._merkle import EMPTY_ROOT, node_hash

__all__ = ["Frontier"]


class Frontier:
    """The roots of the complete subtrees over the first `size` leaf hashes, largest first."""

    __slots__ = ("_hashes", "_sizes", "size")

    def __init__(self) -> None:
        self.size = 0
        self._sizes: list[int] = []
        self._hashes: list[bytes] = []

    def add(self, leaf: bytes) -> None:
        size, node = 1, leaf
        sizes, hashes = self._sizes, self._hashes
        while sizes and sizes[-1] == size:
            size += sizes.pop()
            node = node_hash(hashes.pop(), node)
        sizes.append(size)
        hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves added so far (the same value as `pipewarden.audit.root` over them)."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def to_bytes(self) -> bytes:
        """The subtree roots, largest first, 32 bytes each: stored beside a checkpoint of `size` records."""
        return b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        """The frontier `to_bytes` gave at `size` leaves; ValueError if `data` cannot be one.

        The subtree sizes are the binary digits of `size`, so only the roots are stored.
        """
        sizes = [1 << bit for bit in reversed(range(size.bit_length())) if size >> bit & 1]
        if size < 0 or len(data) != 32 * len(sizes):
            raise ValueError(f"{len(data)} bytes are not the frontier of {size} leaves")
        frontier = cls()
        frontier.size = size
        frontier._sizes = sizes
        frontier._hashes = [data[i : i + 32] for i in range(0, len(data), 32)]
        return frontier

    def copy(self) -> Frontier:
        other = Frontier()
        other.size = self.size
        other._sizes = list(self._sizes)
        other._hashes = list(self._hashes)
        return other
