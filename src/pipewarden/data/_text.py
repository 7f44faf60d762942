"""Text columns as bytes: numpy views of an arrow string array, and full-match patterns checked on them.

A pattern of fixed width over ASCII (``[0-9a-f]{16}``, ``[A-Z]{2}-[0-9]{4}``: the
shapes `profile` writes for codes and identifiers) is checked byte by byte with
lookup tables, which is several times faster than a regular expression per cell
and gives the same answer; any other pattern goes to RE2 (`pyarrow.compute`).
"""

from __future__ import annotations

import functools
import string
from typing import TYPE_CHECKING, Any

from pipewarden.data._contract import anchored

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ByteView", "as_mask", "full_match"]


def as_mask(mask: Any) -> np.ndarray:
    """An arrow boolean array as a numpy mask (null counts as False)."""
    import numpy as np

    result: np.ndarray = np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return result


class ByteView:
    """Numpy views of a string array's offsets and UTF-8 bytes, for checks that skip the regex kernels
    where no cell could match, and for hashing."""

    def __init__(self, text: Any) -> None:
        import numpy as np
        import pyarrow as pa

        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        self.text = text
        buffers = text.buffers()
        wide = pa.types.is_large_string(text.type)
        offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
        self.offsets = offsets[text.offset : text.offset + len(text) + 1].astype(np.int64, copy=False)
        self.data = (
            np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
        )
        self.data = self.data[self.offsets[0] : self.offsets[-1]]
        self.lengths = np.diff(self.offsets)

    def first_bytes(self) -> np.ndarray:
        """The first byte of each cell (0 for an empty cell)."""
        import numpy as np

        first = np.zeros(len(self.lengths), dtype=np.uint8)
        nonempty = self.lengths > 0
        first[nonempty] = self.data[self.offsets[:-1][nonempty] - self.offsets[0]]
        return first

    def grid(self, width: int) -> np.ndarray | None:
        """The bytes as a (cells x width) array when every cell is `width` bytes long, else None."""
        rows = self.lengths.size
        if width < 1 or not rows or int(self.lengths.min()) != width or int(self.lengths.max()) != width:
            return None
        result: np.ndarray = self.data.reshape(rows, width)
        return result


# Characters that stand for themselves in a pattern, and inside a bracketed class; anything else (a dot,
# a quantifier other than {n}, alternation, groups, negated classes, flags) goes to RE2 unchanged.
_PLAIN = frozenset(string.ascii_letters + string.digits + "_-:/@# ")
_IN_CLASS = frozenset(string.ascii_letters + string.digits + "_")
_ESCAPED = frozenset(string.punctuation)


def _class(body: str) -> frozenset[int] | None:
    """The bytes a bracketed class (without its brackets) matches, None if it is not a simple ASCII set."""
    if not body or body[0] == "^":
        return None
    allowed: set[int] = set()
    i = 0
    while i < len(body):
        char = body[i]
        if char == "-" and (i == 0 or i == len(body) - 1):  # a dash first or last is itself
            allowed.add(ord("-"))
            i += 1
            continue
        if char not in _IN_CLASS:
            return None
        if i + 2 < len(body) and body[i + 1] == "-":
            end = body[i + 2]
            if end not in _IN_CLASS or ord(end) < ord(char):
                return None
            allowed.update(range(ord(char), ord(end) + 1))
            i += 3
            continue
        allowed.add(ord(char))
        i += 1
    return frozenset(allowed)


@functools.lru_cache(maxsize=64)
def _fixed_width(pattern: str) -> tuple[frozenset[int], ...] | None:
    """For a pattern that is a sequence of single ASCII characters or classes, each once or `{n}` times,
    the set of bytes allowed at each position of a match; None for any other pattern."""
    positions: list[frozenset[int]] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        atom: frozenset[int] | None
        if char == "[":
            close = pattern.find("]", i + 1)
            if close < 0:
                return None
            atom = _class(pattern[i + 1 : close])
            i = close + 1
        elif char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            # RE2's \d is ASCII digits only (its Perl classes are ASCII), as here.
            atom = frozenset(range(ord("0"), ord("9") + 1)) if escaped == "d" else None
            if escaped in _ESCAPED:
                atom = frozenset({ord(escaped)})
            i += 2
        elif char in _PLAIN:
            atom = frozenset({ord(char)})
            i += 1
        else:
            return None
        if atom is None:
            return None
        count = 1
        if i < len(pattern) and pattern[i] == "{":
            close = pattern.find("}", i + 1)
            digits = pattern[i + 1 : close] if close > 0 else ""
            if not digits.isdigit() or not digits.isascii() or len(digits) > 4:
                return None
            count = int(digits)
            i = close + 1
        positions.extend([atom] * count)
    return tuple(positions) if positions else None


def _grid_match(view: ByteView, positions: tuple[frozenset[int], ...]) -> np.ndarray:
    """`full_match` of a fixed-width pattern: a cell matches when it is exactly that many bytes and each
    byte is one its position allows (every allowed byte is ASCII, so a multi-byte character never does)."""
    import numpy as np

    width = len(positions)
    matched: np.ndarray = view.lengths == width
    some = np.flatnonzero(matched)
    if not some.size:
        return matched
    grid = view.grid(width)
    if grid is None:  # cells of other lengths: the ones of the right length, side by side
        import pyarrow as pa

        grid = ByteView(view.text.take(pa.array(some))).grid(width)
    if grid is None:  # cannot be (every cell taken is `width` bytes), but fail closed: no match
        return np.zeros(view.lengths.size, dtype=bool)
    # One look-up per position, column by column: faster than one over the whole grid and a reduction.
    tables: dict[frozenset[int], np.ndarray] = {}
    for allowed in positions:
        if allowed not in tables:
            tables[allowed] = np.zeros(256, dtype=bool)
            tables[allowed][sorted(allowed)] = True
    ok: np.ndarray = tables[positions[0]][grid[:, 0]]
    for j in range(1, width):
        ok &= tables[positions[j]][grid[:, j]]
    if some.size == view.lengths.size:
        return ok
    matched[some] = ok
    return matched


def full_match(text: Any, pattern: str) -> np.ndarray:
    """Which cells of an arrow string array `pattern` matches as a whole (a missing cell: False)."""
    import pyarrow.compute as pc

    positions = _fixed_width(pattern)
    if positions is not None:
        view = ByteView(text)
        matched: np.ndarray = _grid_match(view, positions)
        if view.text.null_count:
            matched &= as_mask(view.text.is_valid())
        return matched
    return as_mask(pc.match_substring_regex(text, anchored(pattern)))
