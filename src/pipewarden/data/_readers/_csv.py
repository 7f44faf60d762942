"""CSV: UTF-8 text with a header line, read as text so every cell is seen as it was written.

The reader streams with pyarrow's incremental CSV reader, not pandas: pandas pads a
row with too few fields with empty cells without a word, and a ragged row is a
sign of a broken or tampered file. Every column is read as a string (a formula
such as ``=1+2`` or a NUL byte stays what the user wrote); the contract converts
it. An empty cell is a missing value.

A caller that only checks the rows (and writes none of them) may name the columns
it checks as numbers: those are parsed as float64 while reading, and a column in
which a cell does not parse is read as text again from the first chunk not yet
yielded, so that cell is still seen as written.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.data._readers._interface import RawChunk, Reader, TextWriter
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["CsvReader", "CsvWriter"]

logger = logging.getLogger(__name__)

_BLOCK_BYTES = 1 << 20  # the parser's read size: memory stays bounded by it and by chunk_rows


def _header(path: Path, source: str) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        try:
            names = next(csv.reader(fh), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataInputError(f"{source}: the header line cannot be read as UTF-8 CSV: {exc}") from exc
    if not names:
        raise DataInputError(f"{source}: empty file (no header line)")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataInputError(f"{source}: column {name!r} appears twice in the header")
        seen.add(name)
    return names


def _rebatch(batches: Iterator[Any], chunk_rows: int) -> Iterator[Any]:
    """Arrow record batches cut to exactly `chunk_rows` rows (the last one shorter)."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending = rest.to_batches()
            held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


class CsvReader(Reader):
    name = "csv"
    suffixes = (".csv",)

    def sniff(self, head: bytes) -> bool:
        return True  # the fallback: text that is none of the other formats

    def chunks(
        self, path: Path, *, source: str, chunk_rows: int, numeric: Collection[str] = ()
    ) -> Iterator[RawChunk]:
        import pyarrow as pa

        names = _header(path, source)
        # Columns the caller checks as numbers are parsed as float64 by the CSV reader itself (the same
        # parser as a cast of the text, so the same values). A cell that does not parse stops the typed read:
        # that column is read as text from the first row not yet yielded on, and checked cell by cell.
        wanted = set(numeric)
        typed = [name for name in names if name in wanted]
        done = 0  # rows yielded so far: always a whole number of chunks, so chunk bounds do not move
        while True:
            try:
                for table in _rebatch(_skip(self._batches(path, names, typed), done), chunk_rows):
                    yield RawChunk(frame=table.to_pandas(), missing=_missing(table, typed))
                    done += table.num_rows
                return
            except pa.ArrowInvalid as exc:
                if not typed:
                    raise DataInputError(f"{source}: {_explain(str(exc))}") from exc
                failed = _failed_column(str(exc), names)
                logger.debug("%s: %s; reading %s as text from row %d", source, exc, failed or "all", done)
                typed = [name for name in typed if name != failed] if failed in typed else []

    def _batches(self, path: Path, names: list[str], typed: list[str]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        read = pacsv.ReadOptions(block_size=_BLOCK_BYTES, column_names=names, skip_rows=1)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        # Large strings (64-bit offsets): the type the checks work on, so no column is converted again.
        types = {name: pa.large_string() for name in names}
        types.update(dict.fromkeys(typed, pa.float64()))
        convert = pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=False,  # an empty text cell is an empty string (RawChunk.missing says so)
            quoted_strings_can_be_null=False,
            null_values=[""] if typed else [],  # an empty cell in a number column is a null, nothing else
        )
        yield from pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)


def _skip(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """The batches after the first `rows` rows (rows already yielded by an earlier, typed, read)."""
    for batch in batches:
        if rows >= batch.num_rows:
            rows -= batch.num_rows
            continue
        yield batch.slice(rows) if rows else batch
        rows = 0


def _missing(table: Any, typed: list[str]) -> dict[str, np.ndarray]:
    """Empty cells: an empty string in a text column, a null in a number column (parsed from an empty cell:
    a quoted empty cell does not parse, so it is read as text)."""
    import pyarrow.compute as pc

    return {
        name: (column.is_null() if name in typed else pc.equal(pc.binary_length(column), 0)).to_numpy(
            zero_copy_only=False
        )
        for name, column in zip(table.column_names, table.columns, strict=True)
    }


def _failed_column(message: str, names: list[str]) -> str | None:
    """The column a conversion error names ("In CSV column #3: CSV conversion error to double: ...")."""
    match = re.match(r"In CSV column #(\d+): CSV conversion error", message)
    if match is None or int(match.group(1)) >= len(names):
        return None
    return names[int(match.group(1))]


def _explain(message: str) -> str:
    text = message.removeprefix("CSV parse error: ")
    if "columns, got" in text:
        head, _, row = text.partition(": ")
        return f"ragged row: {head.lower()} fields ({row[:80]!r})"
    if "UTF8" in text or "utf8" in text.lower():
        return "not UTF-8 text (the CSV reader needs UTF-8)"
    return text[:200]


class CsvWriter(TextWriter):
    name = "csv"
    suffixes = (".csv",)
    newline = ""  # the csv module writes its own line endings

    def __init__(
        self, target: Path, *, label: str | None = None, row_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(target, label=label, row_shape=row_shape)
        self._columns: list[str] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self._columns is None:
            self._columns = [str(c) for c in frame.columns]
            frame.iloc[:0].to_csv(self._open(), index=False, quoting=csv.QUOTE_NONNUMERIC)
        # Every text cell quoted: pandas' minimal quoting leaves a lone carriage return bare, which a reader
        # takes for the end of the row.
        frame.to_csv(
            self._open(), index=False, header=False, columns=self._columns, quoting=csv.QUOTE_NONNUMERIC
        )
