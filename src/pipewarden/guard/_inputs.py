"""What `InferenceGuard.fit` reads: the reference rows, their feature names and their labels.

A DataFrame's features are named ``str(column)``, at fit and at check alike,
so a frame built like the reference (say ``pd.DataFrame(array)``, with integer
column names) reads the same later, and two columns that would share a name
are refused. Labels are one per reference row, or the name of a column of the
DataFrame (any hashable name it has).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipewarden.errors import GuardError

__all__ = ["classes_of", "reference_of", "unique_columns"]

Array = np.ndarray[Any, Any]


def reference_of(reference: Any, labels: Any) -> tuple[tuple[str, ...], Array, Array | None]:
    """The reference's feature names, its rows as a float matrix, and its labels (None without them)."""
    label_values: Array | None = None
    if hasattr(reference, "columns") and hasattr(reference, "to_numpy"):
        frame = reference
        unique_columns(frame.columns, "reference")
        if _label_column(frame, labels):
            label_values = np.asarray(frame[labels].to_numpy())
            frame = frame.drop(columns=[labels])
        features = tuple(str(c) for c in frame.columns)
        try:
            x = np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan))
        except (TypeError, ValueError) as exc:
            raise GuardError(
                f"reference: a column is not numeric ({exc}); the guard reads numeric features"
            ) from None
    else:
        if isinstance(labels, str):
            raise GuardError(f"reference: labels {labels!r} name a column, but the reference is an array")
        try:
            x = np.asarray(reference, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise GuardError(f"reference: not a numeric array ({exc})") from None
        if x.ndim != 2:
            raise GuardError(f"reference: a {x.ndim}-D array; the guard fits on rows of features (2-D)")
        features = tuple(f"f{j}" for j in range(x.shape[1]))
    if labels is not None and label_values is None:
        label_values = np.asarray(labels)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise GuardError(f"reference: shape {x.shape}; the guard needs rows of at least one feature")
    if label_values is not None and label_values.shape != (x.shape[0],):
        n = x.shape[0]
        if label_values.ndim == 0:
            raise GuardError(
                f"labels: one value ({labels!r}), not one label per reference row ({n} rows); a label column "
                "is named only with a DataFrame reference that has it"
            )
        if label_values.ndim == 1:
            raise GuardError(f"labels: {label_values.shape[0]} labels for {n} reference rows")
        raise GuardError(
            f"labels: shape {label_values.shape}; the guard needs one label per reference row ({n})"
        )
    return features, x, label_values


def _label_column(frame: Any, labels: Any) -> bool:
    """Whether `labels` names a column of `frame` (any hashable name); False for labels given as values."""
    if labels is None:
        return False
    try:
        hash(labels)
    except TypeError:  # an array, list or Series: the labels themselves
        return False
    if labels in frame.columns:
        return True
    if isinstance(labels, tuple) and len(labels) == frame.shape[0]:  # a tuple of labels, one per row
        return False
    raise GuardError(
        f"reference: no label column {labels!r} (columns {_names([str(c) for c in frame.columns])}); "
        "labels are a column name or one label per row"
    )


def unique_columns(columns: Any, what: str) -> list[str]:
    """The columns' names as the guard reads them (``str(name)``); `GuardError` naming one used twice."""
    names = [str(c) for c in columns]
    counts = Counter(names)
    if len(counts) < len(names):
        name = next(n for n in names if counts[n] > 1)
        same = [c for c in columns if str(c) == name]
        spelled = "" if len({repr(c) for c in same}) == 1 else f" (as {', '.join(map(repr, same))})"
        raise GuardError(
            f"{what}: column {name!r} appears {len(same)} times{spelled}; the guard reads each feature by "
            "its name, so column names must be unique"
        )
    return names


def classes_of(
    labels: Array | None,
    classes: Sequence[Any] | None,
    predict_proba: Callable[[Array], Any] | None,
    x: Array,
) -> tuple[Array | None, list[Any]]:
    """Each reference row's class as an index into the class list (the columns of predict_proba)."""
    if predict_proba is None:
        return None, []
    if labels is None:
        proba = np.asarray(predict_proba(x[:1]))
        width = proba.shape[1] if proba.ndim == 2 else 0
        values = list(classes) if classes is not None else list(range(width))
        codes = np.asarray(np.asarray(predict_proba(x), dtype=np.float64).argmax(axis=1))
        return codes, values
    values = list(classes) if classes is not None else sorted(set(labels.tolist()))
    index = {v: i for i, v in enumerate(values)}
    unknown = sorted({str(v) for v in labels.tolist() if v not in index})
    if unknown:
        raise GuardError(f"labels: {', '.join(unknown[:5])} not among the classes {values!r:.120}")
    probe = np.asarray(predict_proba(x[:2]))
    if probe.ndim != 2 or probe.shape[1] != len(values):
        raise GuardError(
            f"predict_proba: {probe.shape[-1] if probe.ndim else 0} columns, but the labels have "
            f"{len(values)} classes; pass classes= in the order of predict_proba's columns"
        )
    return np.array([index[v] for v in labels.tolist()]), values


def _names(features: Sequence[str]) -> str:
    if len(features) <= 4:
        return ", ".join(features)
    return f"{features[0]}..{features[-1]}"
