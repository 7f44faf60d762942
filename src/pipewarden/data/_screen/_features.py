"""Turn a table into what the detectors work on: a numeric matrix, encoded labels, and a metric space.

Numbers stay numbers; a column of few distinct strings becomes one indicator column per value; other
strings (free text, identifiers) are left out and named in the result, because no distance between two
free-text cells says anything about poisoning. Missing numbers take the column's median, so a row with
holes is still compared with the others (the contract check is where holes are judged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipewarden.errors import DataInputError

__all__ = ["Features", "encode"]

#: A string column with at most this many distinct values is one-hot encoded; more, and it is left out.
MAX_CATEGORIES = 32
#: Fewer rows than this leave nothing to compare a row with.
MIN_ROWS = 20


@dataclass(frozen=True, slots=True)
class Features:
    """The numeric view of a table: `raw` in the data's own units, `scaled` for distances."""

    raw: np.ndarray  # (n, d) float64, the data's own values (one-hot for categories)
    scaled: np.ndarray  # (n, d) float64, centred on the median and divided by a robust spread
    names: tuple[str, ...]  # one per column of raw/scaled
    labels: np.ndarray | None  # (n,) int codes into `classes`, or None without a label column
    classes: tuple[str, ...]
    left_out: tuple[str, ...]  # columns not used (free text, or no number at all), named in the report
    shape: tuple[int, ...] | None  # per-row image shape for arrays, else None
    unparsed: dict[str, int]  # number column -> cells that were not numbers (screened as missing)
    infinite: np.ndarray  # (n,) bool: rows with an infinite number, which no distance can place

    @property
    def rows(self) -> int:
        return int(self.raw.shape[0])


#: A text column is numeric when at least this share of its present cells parse as numbers; the rest are
#: counted (and named in the report) as unparsed, and screened as missing. One stray word must not take a
#: whole column out of the screen.
NUMERIC_SHARE = 0.9


def _numeric(series: pd.Series) -> tuple[pd.Series, int] | None:
    """The column as floats and the number of present cells that did not parse; None for a text column."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64"), 0
    converted = pd.to_numeric(series, errors="coerce")
    present = (series.notna() & (series.astype("string").str.strip() != "").fillna(False)).astype(bool)
    parsed = converted[present].notna()
    if present.any() and float(parsed.mean()) >= NUMERIC_SHARE:
        return converted.astype("float64"), int((~parsed).sum())
    return None


def _label_keys(column: pd.Series) -> np.ndarray:
    """Label values as text, with numbers written one way: 1, 1.0 and "1" are the label "1"."""
    numbers = pd.to_numeric(column, errors="coerce")
    if bool(numbers.notna().all()):
        values = numbers.to_numpy(dtype="float64")
        if np.isfinite(values).all() and bool((values == np.round(values)).all()):
            return np.array([str(int(v)) for v in values], dtype=object)
        return np.array([repr(float(v)) for v in values], dtype=object)
    keys: np.ndarray = column.astype("string").str.strip().to_numpy(dtype=object)
    return keys


def encode(
    frame: pd.DataFrame, *, label: str | None, source: str, shape: tuple[int, ...] | None = None
) -> Features:
    """Encode `frame` (features and, when `label` is set, the label column) for the detectors."""
    if label is not None and label not in frame.columns:
        raise DataInputError(
            f"{source}: no label column {label!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if frame.columns.duplicated().any():
        twice = str(frame.columns[frame.columns.duplicated()][0])
        raise DataInputError(f"{source}: column {twice!r} appears more than once")
    if len(frame) < MIN_ROWS:
        raise DataInputError(f"{source}: {len(frame)} rows; the screen compares rows and needs {MIN_ROWS}")
    parts: list[np.ndarray] = []
    names: list[str] = []
    left_out: list[str] = []
    unparsed: dict[str, int] = {}
    infinite = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        if column == label:
            continue
        series = frame[column]
        numeric = _numeric(series)
        if numeric is not None:
            values = numeric[0].to_numpy(copy=True)
            if numeric[1]:
                unparsed[str(column)] = numeric[1]
            infinite |= np.isinf(values)
            finite = np.isfinite(values)
            if not finite.any():
                left_out.append(str(column))
                continue
            values[~finite] = float(np.median(values[finite]))
            parts.append(values[:, None])
            names.append(str(column))
            continue
        text = series.astype("string")
        distinct = text.dropna().unique()
        if len(distinct) <= MAX_CATEGORIES:
            for value in sorted(str(v) for v in distinct):
                parts.append((text == value).fillna(False).to_numpy(dtype="float64")[:, None])
                names.append(f"{column}={value}")
        else:
            left_out.append(str(column))
    if not parts:
        raise DataInputError(f"{source}: no numeric or categorical feature column to screen")
    raw = np.hstack(parts)
    centre = np.median(raw, axis=0)
    if shape is not None:
        # An image array: every column is a pixel in the same unit, so one spread scales them all
        # (a pixel that is nearly always dark must not count a step of one as a leap).
        spread = np.full(raw.shape[1], float(raw.std()) or 1.0)
    else:
        # Columns in their own units: standardised, constant columns left at unit scale.
        std = raw.std(axis=0)
        spread = np.where(std > 0, std, 1.0)
    scaled = (raw - centre) / spread
    labels: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    if label is not None:
        column = frame[label]
        if column.isna().any():
            first = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise DataInputError(f"{source}: label column {label!r} is empty in row {first}")
        keys = _label_keys(column)
        uniq, codes = np.unique(keys, return_inverse=True)
        if len(uniq) < 2:
            raise DataInputError(f"{source}: label column {label!r} has a single class; nothing to compare")
        labels = codes.astype(np.int64)
        classes = tuple(str(u) for u in uniq)
    return Features(
        raw=raw,
        scaled=scaled,
        names=tuple(names),
        labels=labels,
        classes=classes,
        left_out=tuple(left_out),
        shape=shape,
        unparsed=unparsed,
        infinite=infinite,
    )
