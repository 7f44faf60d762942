"""A data file cut into partitions that workers read on their own, and the hash keys one run shares.

A Parquet file is cut between row groups (the client reads the footer only). A CSV file in which no
quote character appears is cut at line ends (a line end then always ends a row): a worker reads the header
line and its byte range. Any other file, or a CSV file that quotes, is one partition. Each partition is
read in chunks of `chunk_rows` exactly as `check` reads the whole file.

The cell and row hashes (`pipewarden.data._hashing`) are keyed per process; on a cluster every worker must
hash with the same keys, so the client draws fresh keys for each run (`RunKeys.draw`) and every task
installs them (`keyed`) while it runs. Tasks of another run wait until the worker's tasks of this one end.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipewarden.data import _hashing
from pipewarden.data._readers import RawChunk, Reader, detect
from pipewarden.errors import DataInputError

__all__ = ["Partition", "RunKeys", "keyed", "partitions", "read_partition"]

_BLOCK = 16 << 20  # bytes read at a time while looking for line ends


@dataclass(frozen=True, slots=True, eq=False)
class RunKeys:
    """One run's hash keys, drawn by the client from the operating system's random source."""

    text: np.ndarray
    sip: str
    rows: np.ndarray

    @classmethod
    def draw(cls) -> RunKeys:
        text = np.frombuffer(os.urandom(8 * (_hashing._KEYED_BYTES + 1)), dtype=np.uint64).copy()
        rows = np.frombuffer(os.urandom(8 * _hashing._KEYS.size), dtype=np.uint64) | np.uint64(1)
        return cls(text=text, sip=os.urandom(8).hex(), rows=rows)


class _Installed:
    """The keys a worker process hashes with now, how many tasks use them, and the process's own keys."""

    lock = threading.Condition()
    keys: RunKeys | None = None
    users = 0
    own: tuple[np.ndarray, str, np.ndarray] | None = None


@contextmanager
def keyed(keys: RunKeys) -> Iterator[None]:
    """Hash with `keys` inside the block; the process's own keys come back when no task uses `keys`."""
    state = _Installed
    with state.lock:
        while state.users and state.keys is not keys:
            state.lock.wait()
        if state.users == 0:
            if not _hashing._TEXT_KEYS:
                _hashing._TEXT_KEYS.append(RunKeys.draw().text)
            state.own = (_hashing._TEXT_KEYS[0], _hashing._SIP_KEY, _hashing._KEYS)
            _hashing._TEXT_KEYS[0], _hashing._SIP_KEY, _hashing._KEYS = keys.text, keys.sip, keys.rows
            state.keys = keys
        state.users += 1
    try:
        yield
    finally:
        with state.lock:
            state.users -= 1
            if state.users == 0 and state.own is not None:
                _hashing._TEXT_KEYS[0], _hashing._SIP_KEY, _hashing._KEYS = state.own
                state.keys = state.own = None
                state.lock.notify_all()


@dataclass(frozen=True, slots=True)
class Partition:
    """Rows of one file a task reads: row groups of a Parquet file, a byte range of a CSV file (after its
    header line, which ends at `header`), or the whole file."""

    number: int
    path: str
    source: str
    fmt: str
    row_groups: tuple[int, ...] | None = None
    row_range: tuple[int, int] = (0, 0)  # rows to skip in the row groups, rows to read
    byte_range: tuple[int, int] | None = None
    header: int = 0

    @property
    def rows(self) -> int | None:
        """The partition's rows, where known ahead (Parquet)."""
        return self.row_range[1] if self.row_groups is not None else None


def _parquet(path: Path, source: str, rows: int, chunk_rows: int) -> list[Partition]:
    """Row ranges of about `rows` rows that begin at a multiple of `chunk_rows`, so that every chunk is the
    chunk `check` reads (what it writes to an output file is then written in the same pieces), each with
    the row groups that hold it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError) as exc:
        raise DataInputError(f"{source}: not a readable Parquet file: {str(exc)[:200]}") from exc
    firsts = [0]
    for group in range(meta.num_row_groups):
        firsts.append(firsts[-1] + meta.row_group(group).num_rows)
    total = firsts[-1]
    step = -(-max(rows, 1) // chunk_rows) * chunk_rows
    found: list[Partition] = []
    for start in range(0, total, step):
        stop = min(start + step, total)
        groups = tuple(g for g in range(meta.num_row_groups) if firsts[g] < stop and firsts[g + 1] > start)
        skip = start - firsts[groups[0]]
        found.append(
            Partition(
                len(found), str(path), source, "parquet", row_groups=groups, row_range=(skip, stop - start)
            )
        )
    return found or [Partition(0, str(path), source, "parquet")]


def _csv(path: Path, size: int) -> list[Partition] | None:
    """Byte ranges that end at line ends, about `size` bytes each; None if a quote appears (a line end may
    then sit inside a cell) or the header line does not end in the first block."""
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            if b'"' in block:
                return None
        total = fh.tell()
        fh.seek(0)
        end = fh.read(_BLOCK).find(b"\n")
        if end < 0:
            return None
        header = end + 1
        cuts: list[int] = []
        at = header + size
        while at < total:
            fh.seek(at)
            while block := fh.read(1 << 16):
                found = block.find(b"\n")
                if found >= 0:
                    at = fh.tell() - len(block) + found + 1
                    break
            else:
                break
            if at >= total:
                break
            cuts.append(at)
            at += size
    bounds = [header, *cuts, total]
    return [
        Partition(i, str(path), str(path), "csv", byte_range=(start, stop), header=header)
        for i, (start, stop) in enumerate(itertools.pairwise(bounds))
    ]


def partitions(
    path: Path, *, source: str, reader: Reader, rows: int, size: int, chunk_rows: int, whole: bool = False
) -> list[Partition]:
    """The partitions of `path`: about `rows` rows (Parquet) or `size` bytes (CSV) each; one with `whole`."""
    if not whole and reader.name == "parquet":
        return _parquet(path, source, rows, chunk_rows)
    if not whole and reader.name == "csv":
        found = _csv(path, size)
        if found:
            return [
                Partition(p.number, p.path, source, p.fmt, byte_range=p.byte_range, header=p.header)
                for p in found
            ]
    return [Partition(0, str(path), source, reader.name)]


def read_partition(part: Partition, *, chunk_rows: int, numeric: Collection[str] = ()) -> Iterator[RawChunk]:
    """The partition's rows in chunks of at most `chunk_rows`, read as `check` reads a whole file."""
    path = Path(part.path)
    if part.row_groups is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipewarden.data._readers._csv import _rebatch, _skip
        from pipewarden.data._readers._parquet import _float_nulls

        try:
            file = pq.ParquetFile(path)
            names = file.schema_arrow.names
            if len(set(names)) != len(names):
                raise DataInputError(f"{part.source}: a column name appears twice in the Parquet schema")
            skip, count = part.row_range
            batches = file.iter_batches(batch_size=chunk_rows, row_groups=list(part.row_groups))
            for table in _rebatch(_skip(batches, skip), chunk_rows):
                if count <= 0:
                    break
                table = table.slice(0, count)
                count -= table.num_rows
                batch = table.combine_chunks().to_batches()[0]
                yield RawChunk(frame=batch.to_pandas(), missing=_float_nulls(batch))
        except (pa.ArrowException, OSError) as exc:
            raise DataInputError(f"{part.source}: not a readable Parquet file: {str(exc)[:200]}") from exc
        return
    reader = detect(path, source=part.source, fmt=part.fmt)
    if part.byte_range is None:
        yield from reader.chunks(path, source=part.source, chunk_rows=chunk_rows, numeric=numeric)
        return
    # The header line and the range, as a file of their own (the CSV reader reads files), on the worker.
    start, stop = part.byte_range
    fd, name = tempfile.mkstemp(prefix="pipewarden-part-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as fh:
            out.write(fh.read(part.header))
            fh.seek(start)
            left = stop - start
            while left > 0 and (block := fh.read(min(_BLOCK, left))):
                out.write(block)
                left -= len(block)
        yield from reader.chunks(Path(name), source=part.source, chunk_rows=chunk_rows, numeric=numeric)
    finally:
        Path(name).unlink(missing_ok=True)
