"""Parquet: read one row group batch at a time (`ParquetFile.iter_batches`), never the whole file."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.data._readers._interface import RawChunk, Reader, Writer, temporary
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ParquetReader", "ParquetWriter"]

MAGIC = b"PAR1"  # first and last four bytes of every Parquet file (Apache Parquet format spec)


class ParquetReader(Reader):
    name = "parquet"
    suffixes = (".parquet", ".pq")

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def chunks(
        self, path: Path, *, source: str, chunk_rows: int, numeric: Collection[str] = ()
    ) -> Iterator[RawChunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(path)
            names = file.schema_arrow.names
            if len(set(names)) != len(names):
                raise DataInputError(f"{source}: a column name appears twice in the Parquet schema")
            for batch in file.iter_batches(batch_size=chunk_rows):
                yield RawChunk(frame=batch.to_pandas(), missing=_float_nulls(batch))
        except (pa.ArrowException, OSError) as exc:
            raise DataInputError(f"{source}: not a readable Parquet file: {str(exc)[:200]}") from exc


def _float_nulls(batch: Any) -> dict[str, np.ndarray]:
    """Null masks of the float columns: pandas turns a Parquet null into NaN, and a NaN is a finding."""
    import pyarrow.types as pat

    masks: dict[str, np.ndarray] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pat.is_floating(column.type):
            masks[name] = column.is_null().to_numpy(zero_copy_only=False)
    return masks


class ParquetWriter(Writer):
    name = "parquet"
    suffixes = (".parquet", ".pq")

    def __init__(
        self, target: Path, *, label: str | None = None, row_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(target, label=label, row_shape=row_shape)
        self._tmp = temporary(target)
        self._writer: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self._writer is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._schema = table.schema
                self._writer = pq.ParquetWriter(self._tmp, self._schema)
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False, schema=self._schema)
            self._writer.write_table(table)
        except (pa.ArrowException, OSError) as exc:
            raise DataInputError(
                f"{self.target}: cannot write these rows as Parquet: {str(exc)[:200]}"
            ) from exc

    def finish(self) -> list[tuple[Path, Path]]:
        if self._writer is None:
            raise DataInputError(f"{self.target}: nothing was written (no columns known)")
        self._writer.close()
        return [(self._tmp, self.target)]

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
