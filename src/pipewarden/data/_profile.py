"""`profile`: learn a contract from trusted data."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipewarden.data._contract import DEFAULT_MAX_STRING_BYTES, ColumnSpec, Contract
from pipewarden.data._rows import label_text
from pipewarden.data._table import Table, table_from_frame
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["profile"]

_INTEGER = r"^[+-]?(?:0|[1-9][0-9]*)$"  # no leading zeros: "0042" is a code, kept as text
_NUMBER = r"^[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
# Simple shapes a text column may have, most specific first. Anything else gets no pattern.
_SHAPES = (
    ("[0-9]", r"^[0-9]+$"),
    ("[0-9a-f]", r"^[0-9a-f]+$"),
    ("[0-9A-F]", r"^[0-9A-F]+$"),
    ("identifier", r"^[A-Za-z_][A-Za-z0-9_]*$"),
)
_MIN_ROWS_FOR_UNIQUE = 20


def _all(text: pd.Series, pattern: str) -> bool:
    return bool(text.str.fullmatch(pattern.removeprefix("^").removesuffix("$")).all())


def _bounds(values: Any, *, integer: bool, margin: float) -> tuple[float | None, float | None]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    low, high = float(finite.min()), float(finite.max())
    span = high - low
    pad = margin * span if span > 0 else margin * max(abs(high), 1.0)
    lo, hi = low - pad, high + pad
    if low >= 0 and lo < 0:  # data that was never negative (counts, sizes, pixels) stays so
        lo = 0.0
    if integer:
        return float(math.floor(lo)), float(math.ceil(hi))
    return lo, hi


def _pattern(text: pd.Series, lengths: Any) -> str | None:
    fixed = int(lengths.min()) == int(lengths.max())
    for shape, regex in _SHAPES:
        if _all(text, regex):
            if shape == "identifier":
                return "[A-Za-z_][A-Za-z0-9_]*"
            return f"{shape}{{{int(lengths.min())}}}" if fixed else f"{shape}+"
    return None


def _text_spec(
    name: str, text: pd.Series, *, nullable: bool, margin: float, max_categories: int, is_label: bool
) -> ColumnSpec:
    import numpy as np

    present = text.dropna()
    distinct = int(present.nunique())
    if present.empty:
        return ColumnSpec(name=name, dtype="string", nullable=True)
    if not is_label and distinct <= max_categories and len(present) >= 5 * distinct:
        return ColumnSpec(
            name=name, dtype="category", nullable=nullable, categories=tuple(sorted(present.unique()))
        )
    lengths = present.str.len().to_numpy()
    unique = distinct == len(present) and len(present) >= _MIN_ROWS_FOR_UNIQUE and not is_label
    return ColumnSpec(
        name=name,
        dtype="string",
        nullable=nullable,
        min_length=int(np.min(lengths)),
        max_length=math.ceil(int(np.max(lengths)) * (1 + margin)),
        pattern=None if is_label else _pattern(present, lengths),
        unique=unique,
    )


def _column(
    name: str, series: pd.Series, *, margin: float, max_categories: int, is_label: bool
) -> ColumnSpec:
    import numpy as np
    import pandas as pd

    null = series.isna()
    nullable = bool(null.any())
    kind = series.dtype.kind
    if kind == "b":
        return ColumnSpec(name=name, dtype="boolean", nullable=nullable)
    if kind == "M":
        return ColumnSpec(name=name, dtype="datetime", nullable=nullable)
    if kind in "iuf":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        integer = kind in "iu"
        dtype = "integer" if integer else "number"
    else:
        text = series.astype("str")
        present = text[~null]
        if present.empty:
            return ColumnSpec(name=name, dtype="string", nullable=True)
        if _all(present, _INTEGER) or _all(present, _NUMBER):
            values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
            integer = _all(present, _INTEGER)
            dtype = "integer" if integer else "number"
        elif present.str.lower().isin(["true", "false"]).all():
            return ColumnSpec(name=name, dtype="boolean", nullable=nullable)
        elif _all(present, _DATETIME):
            return ColumnSpec(name=name, dtype="datetime", nullable=nullable)
        else:
            return _text_spec(
                name,
                text.mask(null),
                nullable=nullable,
                margin=margin,
                max_categories=max_categories,
                is_label=is_label,
            )
    if is_label:
        return ColumnSpec(name=name, dtype=dtype, nullable=nullable)
    low, high = _bounds(values, integer=integer, margin=margin)
    present_values = values[~np.isnan(values)]
    unique = (
        integer
        and present_values.size >= _MIN_ROWS_FOR_UNIQUE
        and np.unique(present_values).size == present_values.size
        and float(np.ptp(present_values)) < 2 * present_values.size  # dense, like a row id
    )
    return ColumnSpec(
        name=name, dtype=dtype, nullable=nullable, minimum=low, maximum=high, unique=bool(unique)
    )


def _duplicate_fraction(frame: pd.DataFrame) -> float:
    import pandas as pd

    if frame.empty:
        return 0.0
    return float(pd.util.hash_pandas_object(frame, index=False).duplicated().mean())


def profile(
    table: Table | pd.DataFrame,
    *,
    margin: float = 0.1,
    label: str | None = None,
    max_categories: int = 20,
    balance_tolerance: float = 0.1,
    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES,
) -> Contract:
    """Learn a contract from trusted data: column types, nullability, numeric ranges widened by `margin`
    (a fraction of the observed range; integers stay integers, never-negative data stays non-negative),
    categories for text with at most `max_categories` values, text lengths and simple patterns (digits, hex,
    identifiers), uniqueness, the label set and class balance, and the observed duplicate-row fraction.

    >>> contract = profile(read_table("train.csv", label="y"))  # doctest: +SKIP
    >>> Path("contract.yaml").write_text(contract.to_yaml())  # doctest: +SKIP
    """
    if not 0.0 <= margin <= 10.0:
        raise DataInputError(f"margin must be between 0 and 10, not {margin}")
    if not isinstance(table, Table):
        table = table_from_frame(table, label=label)
    name = label if label is not None else table.label
    frame = table.frame
    if frame.empty:
        raise DataInputError(f"{table.source}: no rows to learn a contract from")
    if name is not None and name not in frame.columns:
        raise DataInputError(f"{table.source}: no label column {name!r}")
    columns = tuple(
        _column(str(c), frame[c], margin=margin, max_categories=max_categories, is_label=str(c) == name)
        for c in frame.columns
    )
    labels = balance = None
    if name is not None:
        keys = label_text(frame[name]).dropna()
        if keys.empty:
            raise DataInputError(f"{table.source}: the label column {name!r} has no values")
        counts = keys.value_counts()
        labels = tuple(sorted(counts.index, key=_natural))
        balance = tuple((k, round(int(counts[k]) / len(keys), 6)) for k in labels)
    observed = _duplicate_fraction(frame)
    allowed = math.ceil((observed * (1 + margin) + 0.001) * 10_000) / 10_000
    return Contract(
        columns=columns,
        label=name,
        min_rows=1,
        labels=labels,
        class_balance=balance,
        balance_tolerance=balance_tolerance,
        max_duplicate_fraction=min(allowed, 1.0),
        max_string_bytes=max_string_bytes,
    )


def _natural(key: str) -> tuple[int, float, str]:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)
