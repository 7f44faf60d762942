"""The per-row checks, vectorised per column: no Python loop over rows.

`evaluate` turns a frame and a contract into `Hit`s (one rule over one column:
a mask of the rows it rejects, and the reason). Text is checked with pyarrow's
compute kernels (RE2 regular expressions: linear time), numbers with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipewarden.data._contract import DEFAULT_MAX_STRING_BYTES, ColumnSpec, Contract, anchored

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Evaluation", "Hit", "evaluate", "label_text", "row_reasons", "text_hashes"]

# OWASP "CSV Injection": a cell a spreadsheet may run as a formula starts with = + - @, or with a tab or
# carriage return (CWE-1236). Leading whitespace does not stop a spreadsheet either.
_FORMULA_LEAD = ["=", "+", "-", "@"]
_PLAIN_NUMBER = r"^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$"
_NAN_OR_INF = r"^\s*[+-]?(?:(?i)nan|inf|infinity)\s*$"
# C0 controls but tab, newline and carriage return; DEL; and the bidirectional overrides and isolates
# that make text display other than it reads ("Trojan Source", CVE-2021-42574).
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{202a}-\x{202e}\x{2066}-\x{2069}]"
_TRUE_FALSE = ["true", "false", "1", "0"]


@dataclass(frozen=True, slots=True, eq=False)
class Hit:
    """One rule over one column of a frame: the rows it rejects and why."""

    rule_id: str
    column: str | None
    mask: np.ndarray
    reason: str
    values: pd.Series | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """What `evaluate` found. `values` holds each column's values as checked (floats for numbers, text for
    text) for uniqueness and duplicate hashing; `label_keys` the label of each row as text."""

    hits: list[Hit]
    values: dict[str, Any]
    nulls: dict[str, np.ndarray]
    label_keys: pd.Series | None


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else f"{x:g}"


def _arrow_text(series: pd.Series) -> Any:
    import pyarrow as pa

    if series.dtype.kind in "iufb":
        series = series.astype("str")
    try:
        return pa.array(series, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)


def _np(mask: Any) -> np.ndarray:
    """An arrow boolean array as a numpy mask (null counts as False)."""
    import numpy as np

    result: np.ndarray = np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return result


def _is_text(series: pd.Series) -> bool:
    return (
        series.dtype.kind in "OSU" or str(series.dtype) in ("str", "string") or "string" in str(series.dtype)
    )


def _null_mask(name: str, series: pd.Series, missing: Mapping[str, np.ndarray]) -> np.ndarray:
    import numpy as np

    if name in missing:
        return np.asarray(missing[name], dtype=bool)
    return np.asarray(series.isna().to_numpy(), dtype=bool)


class _Bytes:
    """Numpy views of a string array's offsets and UTF-8 bytes, for pre-filters that skip the regex
    kernels on the (usual) column where no cell could match."""

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


# First bytes after which a cell may be a formula: = + - @, tab, CR, ASCII whitespace, and any non-ASCII
# lead byte (a Unicode space such as U+00A0 may come before the =).
_LEAD_BYTES = frozenset(b"=+-@\t\r \n\x0b\x0c")


def _candidates(first: np.ndarray, lead: frozenset[int] = _LEAD_BYTES) -> np.ndarray:
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(lead)] = True
    table[0x80:] = True
    result: np.ndarray = table[first]
    return result


_SPACE_BYTES = frozenset(b" \t\r\n\x0b\x0c")


def _formula(text: Any) -> np.ndarray:
    """Cells a spreadsheet may run as a formula (exact test; call it on candidates only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = pc.utf8_slice_codeunits(text, 0, 1)
    lead = pc.is_in(first, value_set=pa.array([*_FORMULA_LEAD, "\t", "\r"], type=text.type))
    spaced = pc.and_(
        pc.utf8_is_space(first),
        pc.is_in(
            pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(text), 0, 1),
            value_set=pa.array(_FORMULA_LEAD, type=text.type),
        ),
    )
    found = _np(pc.or_(lead, spaced))
    if found.any():  # a plain number such as -3.5 is no formula: a spreadsheet shows it as a number
        found &= ~_np(pc.match_substring_regex(text, _PLAIN_NUMBER)) & ~_np(
            pc.match_substring_regex(text, _NAN_OR_INF)
        )
    return found


def _content_hits(
    name: str, text: Any, series: pd.Series | None, cap: int, only: np.ndarray | None
) -> list[Hit]:
    """The always-on checks of a text column, whatever the contract says. `only` limits the formula and
    control-character checks to some cells (in a number column, the cells that are not numbers)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hits: list[Hit] = []
    view = _Bytes(text)
    rows = len(view.lengths)
    maybe = _candidates(view.first_bytes())
    if only is not None:
        maybe &= only
    candidates = np.flatnonzero(maybe)
    if candidates.size:
        formula = np.zeros(rows, dtype=bool)
        formula[candidates] = _formula(view.text.take(pa.array(candidates)))
        if formula.any():
            hits.append(
                Hit("PW-DATA-120", name, formula, f"{name}: starts like a spreadsheet formula", series)
            )
    data = view.data if only is None else _Bytes(view.text.filter(pa.array(only))).data
    # Only if a control byte, DEL, or the lead byte of U+202A..U+2069 (0xE2) occurs anywhere is the regex run;
    # printable ASCII (every byte in 0x20..0x7E, two quick reductions) holds none of them.
    if (
        data.size
        and (int(data.min()) < 0x20 or int(data.max()) >= 0x7F)
        and (
            ((data < 0x20) & (data != 0x09) & (data != 0x0A) & (data != 0x0D)).any()
            or ((data == 0x7F) | (data == 0xE2)).any()
        )
    ):
        control = _np(pc.match_substring_regex(view.text, _CONTROL))
        if only is not None:
            control &= only
        if control.any():
            hits.append(Hit("PW-DATA-121", name, control, f"{name}: control characters or NUL bytes", series))
    big = view.lengths > cap
    if big.any():
        hits.append(Hit("PW-DATA-122", name, big, f"{name}: text longer than {cap} bytes", series))
    return hits


_TEXT_KEYS: list[np.ndarray] = []
_KEYED_BYTES = 4096  # cells longer than this are hashed by pandas instead (the key table stays small)
_PADDED_BYTES = 64  # cells up to this long are hashed from a zero-padded (cells x bytes) grid


def _short_sums(view: _Bytes, longest: int, keys: np.ndarray) -> np.ndarray:
    """The keyed byte sums of `text_hashes` when no cell is longer than `longest`: one pass per byte
    position over a zero-padded grid (a padding zero adds nothing, as in the general sum), instead of
    position arrays as long as the text."""
    import numpy as np

    rows = view.lengths.size
    if rows and int(view.lengths.min()) == longest:  # every cell as long: the bytes are the grid already
        grid = view.data.reshape(rows, longest)
    else:
        grid = np.zeros((rows, longest), dtype=np.uint8)
        grid[np.arange(longest) < view.lengths[:, None]] = view.data  # row-major: each cell's bytes in order
    sums = np.zeros(rows, dtype=np.uint64)
    for j in range(longest):
        sums += grid[:, j].astype(np.uint64) * keys[j]  # modulo 2**64
    return sums


def text_hashes(text: Any) -> np.ndarray | None:
    """A 64-bit hash per text cell, from its UTF-8 bytes: the sum of each byte times a per-process random
    64-bit key for its position, plus the length times another (a keyed linear hash: without the keys,
    values cannot be crafted to collide). Missing cells hash to 0. None when a cell is too long for the
    key table."""
    import os

    import numpy as np

    view = _Bytes(text)
    longest = int(view.lengths.max()) if view.lengths.size else 0
    if longest > _KEYED_BYTES:
        return None
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


def _numbers(series: pd.Series, text: Any, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as float64, wrong-type mask, NaN/Inf mask) of a column that must hold numbers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if text is None:
        if series.dtype.kind == "b":
            values = series.to_numpy(dtype=np.float64)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.where(null, np.nan, values)
        bad = np.zeros(len(series), dtype=bool)
    else:
        masked = pc.if_else(pa.array(null), pa.scalar(None, text.type), text) if null.any() else text
        try:
            # The fast path: every cell is a number as arrow parses it (a subset of what the exact path
            # below accepts, with the same value), so the result does not depend on how rows are chunked.
            parsed = pc.cast(masked, pa.float64())
            bad = np.zeros(len(null), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            plain = _np(pc.match_substring_regex(text, _PLAIN_NUMBER))
            special = _np(pc.match_substring_regex(text, _NAN_OR_INF))
            parse = (plain | special) & ~null
            cleaned = pc.if_else(pa.array(parse), pc.utf8_trim_whitespace(text), pa.scalar(None, text.type))
            parsed = pc.cast(cleaned, pa.float64())
            bad = ~null & ~parse
        values = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
    odd = ~null & ~bad & ~np.isfinite(values)
    return values, bad, odd


def _parsed_numbers(text: Any, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`_numbers` of a number column read as text, in the common case where arrow parses every present
    cell: None when a cell does not parse (then the exact path decides cell by cell). A cell that parses
    is neither blank nor a formula nor holds a control character, so only its length is left to check."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    masked = pc.if_else(pa.array(null), pa.scalar(None, text.type), text) if null.any() else text
    try:
        parsed = pc.cast(masked, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    values = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = np.zeros(len(null), dtype=bool)
    return values, bad, ~null & ~np.isfinite(values)


def _oversized(name: str, text: Any, series: pd.Series | None, cap: int) -> list[Hit]:
    lengths = _Bytes(text).lengths
    big = lengths > cap
    if lengths.size and big.any():
        return [Hit("PW-DATA-122", name, big, f"{name}: text longer than {cap} bytes", series)]
    return []


def label_text(values: np.ndarray | pd.Series) -> pd.Series:
    """Labels as text, the form contracts keep them in: 3.0 → "3", "cat" → "cat"; missing stays missing."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if series.dtype.kind in "iub":
        return series.astype("int64").astype("str") if series.dtype.kind != "b" else series.astype("str")
    if series.dtype.kind == "f":
        arr = series.to_numpy(dtype=np.float64)
        finite = np.isfinite(arr)
        integral = finite & (arr == np.floor(np.where(finite, arr, 0.0)))
        text = series.astype("str")
        if integral.any():
            text = text.mask(integral, pd.Series(np.where(integral, arr, 0).astype(np.int64)).astype("str"))
        return text.mask(np.isnan(arr))
    return series.astype("str")


def _column_hits(
    spec: ColumnSpec,
    series: pd.Series,
    null: np.ndarray,
    text: Any,
    numbers: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> tuple[list[Hit], Any]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    name = spec.name
    hits: list[Hit] = []
    if not spec.nullable and null.any():
        hits.append(Hit("PW-DATA-104", name, null.copy(), f"{name}: missing value", series))
    if numbers is not None:
        values, bad, odd = numbers
        bad = bad.copy()
        if spec.dtype == "integer":
            finite = np.isfinite(values)
            bad |= finite & (values != np.floor(np.where(finite, values, 0.0)))
        if bad.any():
            hits.append(
                Hit(
                    "PW-DATA-103",
                    name,
                    bad,
                    f"{name}: not {'an integer' if spec.dtype == 'integer' else 'a number'}",
                    series,
                )
            )
        if odd.any():
            hits.append(Hit("PW-DATA-123", name, odd, f"{name}: NaN or infinity", series))
        finite = np.isfinite(values) & ~bad
        if spec.minimum is not None and (low := finite & (values < spec.minimum)).any():
            hits.append(
                Hit("PW-DATA-105", name, low, f"{name}: below the minimum {_num(spec.minimum)}", series)
            )
        if spec.maximum is not None and (high := finite & (values > spec.maximum)).any():
            hits.append(
                Hit("PW-DATA-105", name, high, f"{name}: above the maximum {_num(spec.maximum)}", series)
            )
        if spec.categories is not None:
            allowed = np.array(
                [float(c) for c in spec.categories if isinstance(c, int | float)], dtype=np.float64
            )
            if (other := finite & ~np.isin(values, allowed)).any():
                hits.append(Hit("PW-DATA-106", name, other, f"{name}: not an allowed value", series))
        return hits, values
    if spec.dtype == "boolean":
        if text is None:
            ok = series.isin([True, False, 0, 1]).to_numpy(dtype=bool)
        else:
            ok = _np(
                pc.is_in(
                    pc.utf8_lower(pc.utf8_trim_whitespace(text)),
                    value_set=pa.array(_TRUE_FALSE, type=pa.large_string()),
                )
            )
        if (bad := ~null & ~ok).any():
            hits.append(Hit("PW-DATA-103", name, bad, f"{name}: not true or false", series))
        return hits, series
    if spec.dtype == "datetime":
        if series.dtype.kind == "M":
            stamps = series
        else:
            stamps = pd.to_datetime(series.astype("str"), format="ISO8601", errors="coerce", utc=True)
        if (bad := ~null & stamps.isna().to_numpy(dtype=bool)).any():
            hits.append(Hit("PW-DATA-103", name, bad, f"{name}: not an ISO 8601 date and time", series))
        return hits, stamps
    # string and category: text
    if text is None:  # numbers where text was expected are fine as text (a code such as 0042 aside)
        text = _arrow_text(series)
    present = ~null
    if spec.min_length is not None or spec.max_length is not None:
        lengths = np.asarray(pc.utf8_length(text).fill_null(0).to_numpy(zero_copy_only=False))
        if spec.min_length is not None and (short := present & (lengths < spec.min_length)).any():
            hits.append(
                Hit("PW-DATA-107", name, short, f"{name}: shorter than {spec.min_length} characters", series)
            )
        if spec.max_length is not None and (long := present & (lengths > spec.max_length)).any():
            hits.append(
                Hit("PW-DATA-107", name, long, f"{name}: longer than {spec.max_length} characters", series)
            )
    if spec.pattern is not None:
        matched = _np(pc.match_substring_regex(text, anchored(spec.pattern)))
        if (miss := present & ~matched).any():
            hits.append(Hit("PW-DATA-108", name, miss, f"{name}: does not match {spec.pattern!r}", series))
    if spec.categories is not None:
        allowed_text = pa.array([str(c) for c in spec.categories], type=pa.large_string())
        if (other := present & ~_np(pc.is_in(text, value_set=allowed_text))).any():
            hits.append(Hit("PW-DATA-106", name, other, f"{name}: not an allowed category", series))
    return hits, text


def _unsure(
    spec: ColumnSpec, text: Any, numbers: tuple[np.ndarray, np.ndarray, np.ndarray] | None, cap: int
) -> np.ndarray | None:
    """The cells the formula and control-character checks must look at, None for all: in a number column
    only a cell that is not a number can hold either; in a category column only a value outside the
    categories (unless a category itself is flagged)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if numbers is not None:
        return numbers[1]
    if spec.categories is None:
        return None
    allowed = pa.array([str(c) for c in spec.categories], type=text.type)
    if _content_hits(spec.name, allowed, None, cap, None):
        return None
    return ~_np(pc.is_in(text, value_set=allowed))


def _blank(text: Any) -> np.ndarray:
    """Cells that hold only whitespace (a missing value where numbers, booleans or dates are expected)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    view = _Bytes(text)
    maybe = np.flatnonzero(_candidates(view.first_bytes(), _SPACE_BYTES))
    blank: np.ndarray = np.asarray(view.lengths == 0, dtype=bool)
    if maybe.size:
        some = view.text.take(pa.array(maybe))
        blank[maybe] = _np(pc.equal(pc.utf8_trim_whitespace(some), pa.scalar("", some.type)))
    return blank


def evaluate(
    frame: pd.DataFrame, contract: Contract, *, missing: Mapping[str, np.ndarray] | None = None
) -> Evaluation:
    """Check every row of `frame` against `contract` and the always-on content checks."""
    import numpy as np

    missing = missing or {}
    rows = len(frame)
    hits: list[Hit] = []
    values: dict[str, Any] = {}
    nulls: dict[str, np.ndarray] = {}
    cap = contract.max_string_bytes or DEFAULT_MAX_STRING_BYTES
    specs = {spec.name: spec for spec in contract.columns}
    for name in frame.columns:
        series = frame[name]
        spec = specs.get(str(name))
        text = _arrow_text(series) if _is_text(series) else None
        if spec is None:
            if text is not None:
                hits += _content_hits(str(name), text, series, cap, None)
            values[str(name)] = series
            continue
        null = _null_mask(spec.name, series, missing)
        numbers = _parsed_numbers(text, null) if spec.numeric and text is not None else None
        if numbers is not None:  # every present cell a number: no blank cell, no formula, no control bytes
            hits += _oversized(spec.name, text, series, cap)
        else:
            if text is not None and spec.dtype not in ("string", "category"):
                null = null | _blank(text)
            numbers = _numbers(series, text, null) if spec.numeric else None
            if text is not None:
                hits += _content_hits(spec.name, text, series, cap, _unsure(spec, text, numbers, cap))
        nulls[spec.name] = null
        column_hits, values[spec.name] = _column_hits(spec, series, null, text, numbers)
        hits += column_hits
    for spec in contract.columns:
        if spec.name not in frame.columns and not spec.nullable:
            hits.append(
                Hit("PW-DATA-101", spec.name, np.ones(rows, dtype=bool), f"{spec.name}: column missing")
            )
    label_keys = None
    if contract.label is not None and contract.label in frame.columns:
        label_value = values.get(contract.label)
        raw = label_value if isinstance(label_value, np.ndarray) else frame[contract.label]
        label_keys = label_text(raw)
        label_null = _null_mask(contract.label, frame[contract.label], missing)
        label_keys = label_keys.mask(label_null)
        if contract.labels is not None:
            outside = ~label_keys.isin(list(contract.labels)).to_numpy(dtype=bool) & ~label_null
            if outside.any():
                hits.append(
                    Hit(
                        "PW-DATA-111",
                        contract.label,
                        outside,
                        f"{contract.label}: label not in the label set",
                        frame[contract.label],
                    )
                )
    return Evaluation(hits=hits, values=values, nulls=nulls, label_keys=label_keys)


def row_reasons(frame: pd.DataFrame, contract: Contract) -> list[tuple[str, ...]]:
    """One tuple of reasons per row of `frame` (empty: the row keeps the contract's per-row rules)."""
    import pandas as pd

    frame = frame.reset_index(drop=True)
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    for hit in evaluate(frame, contract).hits:
        text = f"{hit.rule_id} {hit.reason}"
        for row in pd.Series(hit.mask).to_numpy().nonzero()[0]:
            reasons[int(row)].append(text)
    return [tuple(r) for r in reasons]
