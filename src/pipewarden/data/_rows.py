"""The per-row checks, vectorised per column: no Python loop over rows.

`evaluate` turns a frame and a contract into `Hit`s (one rule over one column:
a mask of the rows it rejects, and the reason). Text is checked with pyarrow's
compute kernels (RE2 regular expressions: linear time), numbers with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipewarden.data._content import NAN_OR_INF, PLAIN_NUMBER, Hit, blank, content_hits
from pipewarden.data._contract import DEFAULT_MAX_STRING_BYTES, ColumnSpec, Contract
from pipewarden.data._hashing import text_hashes
from pipewarden.data._text import as_mask, full_match

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Evaluation", "Hit", "evaluate", "label_text", "row_reasons"]

_TRUE_FALSE = ["true", "false", "1", "0"]
# The ways true and false are usually written: found with one look-up, before the exact test (trimmed, in
# lower case) for the rest.
_TRUE_FALSE_WRITTEN = [*_TRUE_FALSE, "True", "False", "TRUE", "FALSE"]


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """What `evaluate` found. `values` holds each column's values as checked (floats for numbers, text for
    text) for uniqueness and duplicate hashing; `label_keys` the label of each row as text; `hashes` the
    `value_hashes` of some text columns, found on the way (a category column's, through its categories)."""

    hits: list[Hit]
    values: dict[str, Any]
    nulls: dict[str, np.ndarray]
    label_keys: pd.Series | None
    hashes: dict[str, np.ndarray] = field(default_factory=dict)


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else f"{x:g}"


def _arrow_text(series: pd.Series) -> Any:
    """A column as one arrow large-string array (not chunked: every check then reads the same buffers)."""
    import pyarrow as pa

    if series.dtype.kind in "iufb":
        series = series.astype("str")
    try:
        text = pa.array(series, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):
        text = text.chunk(0) if text.num_chunks == 1 else text.combine_chunks()
    return text


def _is_text(series: pd.Series) -> bool:
    return (
        series.dtype.kind in "OSU" or str(series.dtype) in ("str", "string") or "string" in str(series.dtype)
    )


def _null_mask(name: str, series: pd.Series, missing: Mapping[str, np.ndarray]) -> np.ndarray:
    import numpy as np

    if name in missing:
        return np.asarray(missing[name], dtype=bool)
    return np.asarray(series.isna().to_numpy(), dtype=bool)


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
        if null.any():
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
            plain = as_mask(pc.match_substring_regex(text, PLAIN_NUMBER))
            special = as_mask(pc.match_substring_regex(text, NAN_OR_INF))
            parse = (plain | special) & ~null
            cleaned = pc.if_else(pa.array(parse), pc.utf8_trim_whitespace(text), pa.scalar(None, text.type))
            parsed = pc.cast(cleaned, pa.float64())
            bad = ~null & ~parse
        values = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
    odd = ~np.isfinite(values)
    if null.any():
        odd &= ~null
    if bad.any():
        odd &= ~bad
    return values, bad, odd


def _parsed_numbers(text: Any, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`_numbers` of a number column read as text, in the common case where arrow parses every present
    cell (the parser a CSV read uses for a number column): None when a cell does not parse, and then the
    exact path decides cell by cell."""
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


def _within(mask: np.ndarray | None, found: np.ndarray) -> np.ndarray:
    return found if mask is None else mask & found


def _column_hits(
    spec: ColumnSpec,
    series: pd.Series,
    null: np.ndarray,
    text: Any,
    numbers: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    outside: np.ndarray | None = None,
    hashes: dict[str, np.ndarray] | None = None,
) -> tuple[list[Hit], Any]:
    """The contract's per-column rules. `outside` is the mask of text cells not among the categories, if
    the caller has it already; the column's `text_hashes` go into `hashes` where found on the way."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    name = spec.name
    hits: list[Hit] = []
    if not spec.nullable and null.any():
        # A missing number has no value to show (a CSV number column may reach here parsed, or as text).
        shown = None if numbers is not None else series
        hits.append(Hit("PW-DATA-104", name, null.copy(), f"{name}: missing value", shown))
    if numbers is not None:
        values, bad, odd = numbers
        # The value shown for a number is the number as parsed, not its text: the same finding whether
        # the column was parsed while reading or converted from text here.
        parsed = pd.Series(values, copy=False)
        wrong = f"{name}: not {'an integer' if spec.dtype == 'integer' else 'a number'}"
        any_bad = bool(bad.any())
        if any_bad:
            hits.append(Hit("PW-DATA-103", name, bad.copy(), wrong, series))
        finite: np.ndarray | None = None
        if spec.dtype == "integer":
            finite = np.isfinite(values)
            fraction = finite & (np.floor(values) != values)
            if any_bad:
                fraction &= ~bad
            if fraction.any():
                hits.append(Hit("PW-DATA-103", name, fraction, wrong, parsed))
                bad, any_bad = bad | fraction, True
        any_odd = bool(odd.any())
        if any_odd:
            hits.append(Hit("PW-DATA-123", name, odd, f"{name}: NaN or infinity", parsed))
        # Ranges and categories hold for present numbers of the right type. With no wrong-type cell and no
        # NaN or infinity, those are all the finite values and the rest are missing cells, which are NaN
        # here: no comparison with NaN holds, so the range masks need no mask of their own.
        if any_bad or any_odd:
            finite = (np.isfinite(values) if finite is None else finite) & ~bad
            low_high = finite
        else:
            finite, low_high = ~null, None
        if spec.minimum is not None and (low := _within(low_high, values < spec.minimum)).any():
            hits.append(
                Hit("PW-DATA-105", name, low, f"{name}: below the minimum {_num(spec.minimum)}", parsed)
            )
        if spec.maximum is not None and (high := _within(low_high, values > spec.maximum)).any():
            hits.append(
                Hit("PW-DATA-105", name, high, f"{name}: above the maximum {_num(spec.maximum)}", parsed)
            )
        if spec.categories is not None:
            allowed = np.array(
                [float(c) for c in spec.categories if isinstance(c, int | float)], dtype=np.float64
            )
            if (other := finite & ~np.isin(values, allowed)).any():
                hits.append(Hit("PW-DATA-106", name, other, f"{name}: not an allowed value", parsed))
        return hits, values
    if spec.dtype == "boolean":
        if text is None:
            ok = series.isin([True, False, 0, 1]).to_numpy(dtype=bool)
        else:
            ok, keys = _keyed(text, _TRUE_FALSE_WRITTEN)
            if hashes is not None:
                hashes[name] = keys
            if (other := np.flatnonzero(~ok & ~null)).size:
                some = text.take(pa.array(other))
                ok[other] = as_mask(
                    pc.is_in(
                        pc.utf8_lower(pc.utf8_trim_whitespace(some)),
                        value_set=pa.array(_TRUE_FALSE, type=some.type),
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
        matched = full_match(text, spec.pattern)
        if (miss := present & ~matched).any():
            hits.append(Hit("PW-DATA-108", name, miss, f"{name}: does not match {spec.pattern!r}", series))
    if spec.categories is not None:
        if outside is None:
            outside = _outside(spec, text)
        if (other := present & outside).any():
            hits.append(Hit("PW-DATA-106", name, other, f"{name}: not an allowed category", series))
    return hits, text


def _unsure(
    spec: ColumnSpec,
    text: Any,
    numbers: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    cap: int,
    outside: np.ndarray | None,
) -> np.ndarray | None:
    """The cells the formula and control-character checks must look at, None for all: in a number column
    only a cell that is not a number can hold either; in a category column only a value outside the
    categories (unless a category itself is flagged)."""
    import pyarrow as pa

    if numbers is not None:
        return numbers[1]
    if spec.categories is None or outside is None:
        return None
    allowed = pa.array([str(c) for c in spec.categories], type=text.type)
    if content_hits(spec.name, allowed, None, cap, None):
        return None
    return outside


def _keyed(text: Any, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which text cells are one of `words`, and every cell's `text_hashes`: a word's from the words,
    hashed once, through its index (one look-up per cell instead of hashing each cell's bytes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    allowed = pa.array(words, type=text.type)
    index = pc.index_in(text, value_set=allowed)
    found = as_mask(index.is_valid())
    keys: np.ndarray = text_hashes(allowed)[np.asarray(index.fill_null(0).to_numpy(zero_copy_only=False))]
    if not found.all():
        keys[~found] = text_hashes(text.filter(pa.array(~found)))
    return found, keys


def _outside(spec: ColumnSpec, text: Any) -> np.ndarray:
    """Text cells that are none of the column's categories."""
    import pyarrow as pa
    import pyarrow.compute as pc

    allowed = pa.array([str(c) for c in spec.categories or ()], type=text.type)
    return ~as_mask(pc.is_in(text, value_set=allowed))


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
    hashes: dict[str, np.ndarray] = {}
    cap = contract.max_string_bytes or DEFAULT_MAX_STRING_BYTES
    specs = {spec.name: spec for spec in contract.columns}
    for name in frame.columns:
        series = frame[name]
        spec = specs.get(str(name))
        text = _arrow_text(series) if _is_text(series) else None
        if spec is None:
            if text is not None:
                hits += content_hits(str(name), text, series, cap, None)
            values[str(name)] = series
            continue
        null = _null_mask(spec.name, series, missing)
        outside: np.ndarray | None = None
        # A number column read as text where every present cell parses: no cell is blank, a formula, holds
        # a control character or is text at all, so there is nothing left for the content checks.
        numbers = _parsed_numbers(text, null) if spec.numeric and text is not None else None
        if numbers is None:
            if text is not None and spec.dtype not in ("string", "category"):
                null = null | blank(text)
            numbers = _numbers(series, text, null) if spec.numeric else None
            if text is not None:
                if spec.text and spec.categories is not None:
                    found, hashes[spec.name] = _keyed(text, [str(c) for c in spec.categories])
                    outside = ~found
                only = _unsure(spec, text, numbers, cap, outside)
                hits += content_hits(spec.name, text, series, cap, only, numeric=spec.numeric)
        nulls[spec.name] = null
        column_hits, values[spec.name] = _column_hits(spec, series, null, text, numbers, outside, hashes)
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
                        # The label as text ("5", whether read as 5.0 or as "5"); as written if it is none.
                        label_keys.fillna(frame[contract.label].astype("str")),
                    )
                )
    return Evaluation(hits=hits, values=values, nulls=nulls, label_keys=label_keys, hashes=hashes)


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
