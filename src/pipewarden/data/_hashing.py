"""64-bit hashes of cells and rows, and the set of hashes seen so far (uniqueness, duplicate rows).

Every hash here is keyed with per-process random numbers, so values cannot be
crafted to collide (which would get later rows quarantined as repeats) without
knowing the keys. A value hashes alike in every chunk of one run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from pipewarden.data._text import ByteView

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Seen", "row_hashes", "text_hashes", "value_hashes"]

_TEXT_KEYS: list[np.ndarray] = []
_KEYED_BYTES = 4096  # cells longer than this are hashed by pandas instead (the key table stays small)
_SIP_KEY = os.urandom(8).hex()  # pandas' hash key: 16 characters, random per process
_PADDED_BYTES = 64  # cells up to this long are hashed from a zero-padded (cells x bytes) grid


def _short_sums(view: ByteView, longest: int, keys: np.ndarray) -> np.ndarray:
    """The keyed byte sums of `text_hashes` when no cell is longer than `longest`: one pass per byte
    position over a zero-padded grid (a padding zero adds nothing, as in the general sum), instead of
    position arrays as long as the text."""
    rows = view.lengths.size
    grid = view.grid(longest)
    if grid is None:
        grid = np.zeros((rows, longest), dtype=np.uint8)
        grid[np.arange(longest) < view.lengths[:, None]] = view.data  # row-major: each cell's bytes in order
    sums = np.zeros(rows, dtype=np.uint64)
    for j in range(longest):
        sums += grid[:, j].astype(np.uint64) * keys[j]  # modulo 2**64
    return sums


def text_hashes(text: Any) -> np.ndarray:
    """A 64-bit hash per text cell, from its UTF-8 bytes: the sum of each byte times a per-process random
    64-bit key for its position, plus the length times another (a keyed linear hash: without the keys,
    values cannot be crafted to collide). A cell longer than the key table gets pandas' SipHash under a
    per-process random key instead, decided by the cell alone, so a value hashes alike in every chunk
    whatever else the chunk holds. Missing cells hash to 0."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    view = ByteView(text)
    longest = int(view.lengths.max()) if view.lengths.size else 0
    if longest > _KEYED_BYTES:
        long = view.lengths > _KEYED_BYTES
        mixed = text_hashes(pc.if_else(pa.array(long), pa.scalar("", view.text.type), view.text))
        cells = np.array(view.text.filter(pa.array(long)).to_pylist(), dtype=object)
        mixed[long] = pd.util.hash_array(cells, hash_key=_SIP_KEY, categorize=False)
        if view.text.null_count:
            mixed[np.asarray(view.text.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = 0
        return mixed
    if not _TEXT_KEYS:
        _TEXT_KEYS.append(np.frombuffer(os.urandom(8 * (_KEYED_BYTES + 1)), dtype=np.uint64).copy())
    keys = _TEXT_KEYS[0]
    if longest <= _PADDED_BYTES:
        sums = _short_sums(view, longest, keys)
    else:
        starts = view.offsets[:-1] - view.offsets[0]
        position = np.arange(view.data.size, dtype=np.int64) - np.repeat(starts, view.lengths)
        weighted = view.data.astype(np.uint64) * keys[position]
        running = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(weighted, dtype=np.uint64)])
        sums = running[starts + view.lengths] - running[starts]  # modulo 2**64, as every step here
    hashes: np.ndarray = sums + view.lengths.astype(np.uint64) * keys[_KEYED_BYTES]
    if view.text.null_count:
        hashes[np.asarray(view.text.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return hashes


def value_hashes(values: Any) -> np.ndarray:
    """A 64-bit hash per value: text by `text_hashes`, numbers and other values by pandas' hashing (text
    that is not an arrow string array is dictionary-encoded first, so each distinct value is hashed once)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, np.ndarray):
        return np.asarray(pd.util.hash_array(values), dtype=np.uint64)
    if isinstance(values, pa.Array | pa.ChunkedArray) and pa.types.is_string(
        values.type
    ) | pa.types.is_large_string(values.type):
        return text_hashes(values)
    if isinstance(values, pd.Series) and values.dtype.kind not in "OSU" and "str" not in str(values.dtype):
        return np.asarray(pd.util.hash_pandas_object(values, index=False).to_numpy(), dtype=np.uint64)
    try:
        text = (
            values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, from_pandas=True)
        )
        encoded = pc.dictionary_encode(text)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        series: pd.Series = values if isinstance(values, pd.Series) else pd.Series(values.to_pandas())
        return np.asarray(pd.util.hash_pandas_object(series, index=False).to_numpy(), dtype=np.uint64)
    words = encoded.dictionary.to_numpy(zero_copy_only=False)
    distinct = np.append(np.asarray(pd.util.hash_array(words, categorize=False), np.uint64), 0)
    codes = encoded.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)  # a missing value: hash 0
    return np.asarray(distinct[codes], dtype=np.uint64)


# Per-process random keys for the row hash: rows cannot be crafted to collide with rows that come later
# (which would get those quarantined as duplicates) without knowing them.
_KEYS = np.frombuffer(os.urandom(8 * 256), dtype=np.uint64) | np.uint64(1)


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, in place: a bijection on 64 bits in which every input bit reaches every
    output bit."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def row_hashes(columns: list[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per row over every column: float columns by their bits (-0.0 and every NaN made
    one value), other columns by their 64-bit hashes. Each column's value is keyed (a per-process random
    number added) and mixed on its own, then folded into the row's hash and mixed again. Every step is a
    bijection, so two rows that differ in one column never collide, and values that differ only in their
    high bits (small whole numbers stored as floats) spread over all 64 bits before they are combined."""
    rows = len(columns[0]) if columns else 0
    h = np.zeros(rows, dtype=np.uint64)
    for i, column in enumerate(columns):
        if column.dtype == np.float64:
            clean = column + 0.0  # -0.0 becomes 0.0
            nan = np.isnan(clean)
            if nan.any():
                clean[nan] = np.nan  # one NaN, whatever its payload
            bits = clean.view(np.uint64)
        else:
            bits = column.astype(np.uint64, copy=False)
        h ^= _mix(bits + _KEYS[i % _KEYS.size])  # the sum is a new array: the column is left as it was
        _mix(h)
    return h


_FILTER_BITS = 24  # one byte per slot: 16 MiB per tracker, whatever the input's size
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the slot is the top bits of hash * 2**64 / phi
_RUNS = 8  # sorted runs kept before they are merged into one


class Seen:
    """The 64-bit hashes of what was seen, bounded by `cap` entries: sorted runs (one per call, merged into
    one every `_RUNS` calls) behind a one-byte-per-slot filter, so most hashes, never seen before, are
    answered by one look-up and never searched for in the runs."""

    def __init__(self, cap: int) -> None:
        self.runs: list[np.ndarray] = []
        self.size = 0
        self.filter = np.zeros(1 << _FILTER_BITS, dtype=bool)
        self.cap = cap
        self.full = False

    def _slots(self, hashes: np.ndarray) -> np.ndarray:
        return np.asarray((hashes * _MIX) >> np.uint64(64 - _FILTER_BITS), dtype=np.intp)

    def repeats(self, hashes: np.ndarray) -> np.ndarray:
        """Which of `hashes` were seen before: earlier in this array or in an earlier call."""
        import pandas as pd

        hashes = np.asarray(hashes, dtype=np.uint64)
        # Earlier in this array: every occurrence after the first (the first is the original).
        repeat = pd.Series(hashes, copy=False).duplicated(keep="first").to_numpy(dtype=bool, copy=True)
        fresh = np.flatnonzero(~repeat)
        slots = self._slots(hashes[fresh])
        maybe = np.flatnonzero(self.filter[slots])  # a slot taken: maybe seen in an earlier call
        if maybe.size:
            # Searched for in sorted order: each run is then walked forward, not jumped about in.
            order = np.argsort(hashes[fresh[maybe]])
            maybe = maybe[order]
            queries = hashes[fresh[maybe]]
            seen = np.zeros(maybe.size, dtype=bool)
            for run in self.runs:
                at = np.minimum(np.searchsorted(run, queries), run.size - 1)
                seen |= run[at] == queries
            repeat[fresh[maybe[seen]]] = True
            new = np.ones(fresh.size, dtype=bool)
            new[maybe[seen]] = False
            fresh, slots = fresh[new], slots[new]
        room = max(self.cap - self.size, 0)
        if fresh.size > room:
            self.full = True
            fresh, slots = fresh[:room], slots[:room]
        if fresh.size:
            self.filter[slots] = True
            self.runs.append(np.sort(hashes[fresh]))
            self.size += int(fresh.size)
            if len(self.runs) > _RUNS:  # sorted runs: a stable sort merges them in linear time
                self.runs = [np.sort(np.concatenate(self.runs), kind="stable")]
        result: np.ndarray = repeat
        return result
