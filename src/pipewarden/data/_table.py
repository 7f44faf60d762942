"""Tables: a whole file (`read_table`, for profile and screen) or its chunks (`iter_table`, for check)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipewarden.data._readers import detect
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["DEFAULT_CHUNK_ROWS", "Table", "TableChunk", "iter_table", "read_table", "table_from_frame"]

DEFAULT_CHUNK_ROWS = 65_536
_LABEL_DEFAULT = "label"  # the label column's name when labels come from a separate file and no name is given


@dataclass(frozen=True, slots=True, eq=False)
class Table:
    """A whole data set: features and label in one frame, columns in file order.

    `label` names the label column in `frame` (None without one); `source` is the
    path as given, for messages; `shape` is the per-row shape of an image array
    (rank 3 or 4 .npy), None for a table.
    """

    frame: pd.DataFrame
    label: str | None
    source: str
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in self.frame.columns:
            raise DataInputError(f"{self.source}: no label column {self.label!r}")

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def features(self) -> pd.DataFrame:
        """The frame without the label column."""
        return self.frame.drop(columns=[self.label]) if self.label is not None else self.frame

    @property
    def labels(self) -> pd.Series | None:
        return self.frame[self.label] if self.label is not None else None


@dataclass(frozen=True, slots=True, eq=False)
class TableChunk:
    """Consecutive rows of a file: `start` is the 0-based row index in the file of the chunk's first row.

    `missing` maps a column to a mask of cells that hold no value where the frame
    alone cannot tell (an empty CSV cell, a Parquet null in a float column).
    """

    frame: pd.DataFrame
    label: str | None
    source: str
    start: int
    shape: tuple[int, ...] | None = None
    missing: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.frame)


def table_from_frame(frame: pd.DataFrame, *, label: str | None = None, source: str = "<frame>") -> Table:
    """Wrap a DataFrame already in memory (columns named by strings) as a Table."""
    frame = frame.rename(columns=str) if any(not isinstance(c, str) for c in frame.columns) else frame
    if label is not None and label not in frame.columns:
        raise DataInputError(f"{source}: no label column {label!r} (columns: {_names(frame)})")
    return Table(frame=frame.reset_index(drop=True), label=label, source=source)


def _names(frame: pd.DataFrame, limit: int = 12) -> str:
    names = [str(c) for c in frame.columns]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _load_labels(path: Path) -> pd.Series:
    """Labels, one per row: .npy (1-D, or one column), .csv (one column, a header), .txt (one a line)."""
    import numpy as np
    import pandas as pd

    source = str(path)
    reader = detect(path, source=source, fmt=None if path.suffix.lower() != ".txt" else "csv")
    if reader.name == "npy":
        from pipewarden.data._readers._npy import _open

        array = _open(path, source)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise DataInputError(f"{source}: labels must be one value per row (shape {array.shape})")
        return pd.Series(np.asarray(array))
    if path.suffix.lower() == ".txt":
        with path.open("r", encoding="utf-8") as fh:
            values = [line.strip() for line in fh if line.strip()]
        series = pd.Series(values, dtype="str")
    else:
        frames = [chunk.frame for chunk in reader.chunks(path, source=source, chunk_rows=1 << 20)]
        if not frames:
            raise DataInputError(f"{source}: empty file (no labels)")
        frame = pd.concat(frames, ignore_index=True)
        if frame.shape[1] != 1:
            raise DataInputError(f"{source}: a labels file has one column, not {frame.shape[1]}")
        series = frame.iloc[:, 0]
    if series.dtype.kind not in "iufb":
        numbers = pd.to_numeric(series, errors="coerce")
        if not numbers.isna().any():
            integral = (numbers == np.floor(numbers)).all()
            series = numbers.astype("int64") if integral else numbers
    return series.reset_index(drop=True)


def iter_table(
    path: Path | str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    label: str | None = None,
    labels_path: Path | str | None = None,
    fmt: str | None = None,
    numeric: Collection[str] = (),
) -> Iterator[TableChunk]:
    """Stream a data file in chunks of at most `chunk_rows` rows, with bounded memory.

    The format is read from the content (CSV, Parquet, JSON Lines, .npy) and must
    agree with the file's name or `fmt`. `labels_path` adds a label column from a
    separate file (named `label`, default ``"label"``); otherwise `label` names a
    column of the file. Raises `DataInputError` naming the file: missing, empty,
    another format than its name says, no such label column, labels of another length.
    `numeric` names columns to be checked as numbers, which a CSV file then gives as
    float64 wherever every cell of the column parses (a null for an empty cell), as
    text from the chunk on where one does not (see `Reader.chunks`).

    >>> for chunk in iter_table("batch.csv", chunk_rows=10_000):  # doctest: +SKIP
    ...     print(chunk.start, chunk.rows)
    """
    if chunk_rows < 1:
        raise DataInputError(f"{path}: chunk_rows must be at least 1, not {chunk_rows}")
    source = str(path)
    path = Path(path)
    reader = detect(path, source=source, fmt=fmt)
    shape = reader.row_shape(path, source=source)
    labels = _load_labels(Path(labels_path)) if labels_path is not None else None
    name = label if label is not None or labels is None else _LABEL_DEFAULT
    start = 0
    for raw in reader.chunks(path, source=source, chunk_rows=chunk_rows, numeric=numeric):
        frame = raw.frame
        if labels is not None and name is not None:
            if name in frame.columns:
                raise DataInputError(f"{source}: has a column {name!r} already; name the labels otherwise")
            stop = start + len(frame)
            if stop > len(labels):
                raise DataInputError(
                    f"{labels_path}: {len(labels)} labels for {source}, which has more rows (at least {stop})"
                )
            frame = frame.assign(**{name: labels.iloc[start:stop].to_numpy()})
        elif name is not None and name not in frame.columns:
            raise DataInputError(f"{source}: no label column {name!r} (columns: {_names(frame)})")
        yield TableChunk(
            frame=frame, label=name, source=source, start=start, shape=shape, missing=raw.missing
        )
        start += len(frame)
    if start == 0:
        raise DataInputError(f"{source}: empty file (no rows)")
    if labels is not None and start != len(labels):
        raise DataInputError(f"{labels_path}: {len(labels)} labels for the {start} rows of {source}")


def read_table(
    path: Path | str,
    *,
    label: str | None = None,
    labels_path: Path | str | None = None,
    fmt: str | None = None,
) -> Table:
    """Read a whole data file into memory (see `iter_table` for formats, labels and errors).

    A missing value is NaN (or None in a text column); an empty CSV cell is a missing value.

    >>> table = read_table("train.csv", label="y")  # doctest: +SKIP
    >>> table.frame.shape, table.label
    """
    import pandas as pd

    frames: list[pd.DataFrame] = []
    label_name: str | None = None
    source = str(path)
    shape: tuple[int, ...] | None = None
    for chunk in iter_table(path, chunk_rows=1 << 18, label=label, labels_path=labels_path, fmt=fmt):
        frame = chunk.frame
        for column, mask in chunk.missing.items():
            if mask.any():
                frame = frame.assign(**{column: frame[column].mask(mask)})
        frames.append(frame)
        label_name, shape = chunk.label, chunk.shape
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return Table(frame=frame, label=label_name, source=source, shape=shape)
