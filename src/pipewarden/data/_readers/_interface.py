"""What a data format provides: a reader that streams a file in row chunks, and a writer for rows.

A reader never trusts a file's name: `sniff` looks at the first bytes, and the
caller (`pipewarden.data._table`) refuses a file whose content and name disagree.
Every reader yields pandas frames of at most `chunk_rows` rows, so memory stays
bounded by the chunk size whatever the file's size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["DataInputError", "RawChunk", "Reader", "TextWriter", "Writer", "temporary"]


@dataclass(frozen=True, slots=True, eq=False)
class RawChunk:
    """Rows as a reader produced them. `missing` maps a column to a mask of cells that hold no value
    where the frame alone cannot tell (an empty CSV cell; a Parquet null in a float column, which pandas
    would otherwise turn into NaN)."""

    frame: pd.DataFrame
    missing: Mapping[str, np.ndarray] = field(default_factory=dict)


class Reader(ABC):
    """One data format: how to recognise it and how to stream its rows."""

    name: ClassVar[str]
    """The format's name in messages and options: ``"csv"``, ``"parquet"``, ``"jsonl"``, ``"npy"``."""
    suffixes: ClassVar[tuple[str, ...]]
    """File-name endings that claim this format (lower case, with the dot)."""

    @abstractmethod
    def sniff(self, head: bytes) -> bool:
        """Whether the file's first bytes are this format's."""

    @abstractmethod
    def chunks(
        self, path: Path, *, source: str, chunk_rows: int, numeric: Collection[str] = ()
    ) -> Iterator[RawChunk]:
        """Stream the rows, at most `chunk_rows` per chunk; raise `DataInputError` naming `source`.

        `numeric` names columns the caller checks as numbers: a text format may parse them as float64
        (a null for an empty cell) while reading, as long as a cell that does not parse reaches the caller
        as text; a format whose columns have types ignores it."""

    def row_shape(self, path: Path, *, source: str) -> tuple[int, ...] | None:
        """The per-row shape of an array file of rank 3 or 4 (an image), None for a table."""
        return None


def temporary(target: Path) -> Path:
    """Where a writer puts a file before it is renamed into place (same folder, so the rename is atomic)."""
    return target.with_name(f".{target.name}.pipewarden-tmp")


class Writer(ABC):
    """Writes rows to one file chunk by chunk, into a temporary file renamed into place by `commit`.

    A crash or an error (`abort`) leaves whatever was at the target before: never a half-written file.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    holds_text: ClassVar[bool] = True
    """Whether the format can hold text columns (the quarantine's reasons); .npy cannot."""

    def __init__(
        self, target: Path, *, label: str | None = None, row_shape: tuple[int, ...] | None = None
    ) -> None:
        self.target = target
        self.label = label
        self.row_shape = row_shape

    @abstractmethod
    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (the first call fixes the columns); raise `DataInputError` naming the target."""

    @abstractmethod
    def finish(self) -> list[tuple[Path, Path]]:
        """Close the files; return every (temporary file, final path) pair to rename."""

    @abstractmethod
    def discard(self) -> None:
        """Close and delete every temporary file."""

    def commit(self) -> None:
        """Finish and rename every temporary file into place (one rename per file: atomic)."""
        for tmp, final in self.finish():
            tmp.replace(final)

    def abort(self) -> None:
        """Give up: the targets keep what they held before."""
        self.discard()


class TextWriter(Writer):
    """A writer of one UTF-8 text file: opened at the first rows, left empty (but present) without any."""

    #: How the file translates line endings (``open(newline=...)``).
    newline: ClassVar[str] = "\n"

    def __init__(
        self, target: Path, *, label: str | None = None, row_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(target, label=label, row_shape=row_shape)
        self._tmp = temporary(target)
        self._fh: TextIO | None = None

    def _open(self) -> TextIO:
        """The temporary file, opened on first use."""
        if self._fh is None:
            try:
                self._fh = self._tmp.open("w", encoding="utf-8", newline=self.newline)
            except OSError as exc:
                raise DataInputError(f"{self.target}: cannot write: {exc.strerror or exc}") from exc
        return self._fh

    def finish(self) -> list[tuple[Path, Path]]:
        if self._fh is None:  # no rows: the file still exists, empty, so a reader sees "no rows"
            self._tmp.write_text("", encoding="utf-8")
        else:
            self._fh.close()
        return [(self._tmp, self.target)]

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)
