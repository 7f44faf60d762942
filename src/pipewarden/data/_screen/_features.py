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


@dataclass(frozen=True, slots=True)
class Features:
    """The numeric view of a table: `raw` in the data's own units, `scaled` for distances."""

    raw: np.ndarray  # (n, d) float64, the data's own values (one-hot for categories)
    scaled: np.ndarray  # (n, d) float64, centred on the median and divided by a robust spread
    names: tuple[str, ...]  # one per column of raw/scaled
    labels: np.ndarray | None  # (n,) int codes into `classes`, or None without a label column
    classes: tuple[str, ...]
    left_out: tuple[str, ...]  # columns not used (free text), named in the report
    shape: tuple[int, ...] | None  # per-row image shape for arrays, else None

    @property
    def rows(self) -> int:
        return int(self.raw.shape[0])


def _numeric(series: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    converted = pd.to_numeric(series, errors="coerce")
    present = series.notna()
    # A text column counts as numeric when every present cell parses as a number.
    if present.any() and bool(converted[present].notna().all()):
        return converted.astype("float64")
    return None


def encode(
    frame: pd.DataFrame, *, label: str | None, source: str, shape: tuple[int, ...] | None = None
) -> Features:
    """Encode `frame` (features and, when `label` is set, the label column) for the detectors."""
    if label is not None and label not in frame.columns:
        raise DataInputError(
            f"{source}: no label column {label!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if len(frame) == 0:
        raise DataInputError(f"{source}: has no rows to screen")
    parts: list[np.ndarray] = []
    names: list[str] = []
    left_out: list[str] = []
    for column in frame.columns:
        if column == label:
            continue
        series = frame[column]
        numeric = _numeric(series)
        if numeric is not None:
            values = numeric.to_numpy(copy=True)
            finite = np.isfinite(values)
            fill = float(np.median(values[finite])) if finite.any() else 0.0
            values[~finite] = fill
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
        keys = column.astype("string").to_numpy(dtype=object)
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
    )
