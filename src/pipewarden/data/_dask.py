"""`check_dask` and `screen_file_dask`: `check` and `screen_file` with the work done by a Dask cluster.

Check: each partition (see `_partitions`) is read and evaluated by a worker, which returns what the
client needs and no cell it does not: per chunk the rows each rule rejects (with the first cells shown in
findings), the keyed hashes of the unique columns and of every row, the label counts. The client then
runs, partition after partition in input order, the bookkeeping that depends on row order (uniqueness,
duplicate rows and their allowance, the per-rule listing, the counts) with the same functions `check`
uses, so the result is `check`'s. When rows are written (`quarantine`, `output`) or a repeated unique
value is shown, the worker reads its partition again, and refuses it if its row hashes changed.

Screen: the screen needs every row at once (scaling, one neighbour search, models fitted over all
rows), so it runs whole as one task on a worker.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from pipewarden.data._check import (
    DEFAULT_MAX_ROW_FINDINGS,
    DEFAULT_MAX_TRACKED,
    BatchKeys,
    CheckResult,
    _State,
    account,
    batch_keys,
    check_result,
    label_counts,
    repeat_hits,
)
from pipewarden.data._content import Hit
from pipewarden.data._contract import Contract
from pipewarden.data._partitions import Partition, RunKeys, keyed, partitions, read_partition
from pipewarden.data._quarantine import REASONS_COLUMN, ROW_COLUMN, Sinks
from pipewarden.data._readers import detect
from pipewarden.data._rows import evaluate
from pipewarden.data._rules import RULES
from pipewarden.data._screen import ScreenResult, screen_file
from pipewarden.data._table import DEFAULT_CHUNK_ROWS, _load_labels, _names
from pipewarden.errors import DataError, DataInputError, PipewardenError
from pipewarden.findings import Report

__all__ = ["DEFAULT_PARTITION_BYTES", "DEFAULT_PARTITION_ROWS", "check_dask", "screen_file_dask"]

#: Rows per partition of a Parquet file (whole row groups), bytes per partition of a CSV file.
DEFAULT_PARTITION_ROWS = 1 << 20
DEFAULT_PARTITION_BYTES = 128 << 20
_UNIQUE = "PW-DATA-109"


@dataclass(frozen=True, slots=True)
class _Job:
    """What every task of one check shares."""

    contract: Contract
    keys: RunKeys
    chunk_rows: int
    numeric: tuple[str, ...]
    label: str | None
    labels_path: str | None
    max_row_findings: int


@dataclass(frozen=True, slots=True, eq=False)
class _HitFacts:
    rule_id: str
    column: str | None
    rows: np.ndarray  # rows of the chunk the rule rejects
    reason: str
    cells: list[Any] | None  # the cells of the first max_row_findings of them, as findings show them


@dataclass(frozen=True, slots=True, eq=False)
class _ChunkFacts:
    rows: int
    columns: list[str]
    hits: list[_HitFacts]
    keys: BatchKeys
    labels: dict[Any, int]
    digest: bytes


def _digest(hashes: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(hashes).tobytes(), digest_size=16).digest()


def _frames(part: Partition, job: _Job, start: int | None, last: bool) -> Iterator[tuple[Any, Any]]:
    """(frame, missing) per chunk of `part`, with the label column from a labels file as `iter_table`
    adds it (such partitions know their first row: `start`)."""
    source = part.source
    labels = _load_labels(Path(job.labels_path)) if job.labels_path is not None else None
    name = job.label if job.label is not None or labels is None else "label"
    at = start or 0
    for raw in read_partition(part, chunk_rows=job.chunk_rows, numeric=job.numeric):
        frame = raw.frame
        if labels is not None and name is not None:
            if name in frame.columns:
                raise DataInputError(f"{source}: has a column {name!r} already; name the labels otherwise")
            stop = at + len(frame)
            if stop > len(labels):
                raise DataInputError(
                    f"{job.labels_path}: {len(labels)} labels for {source}, "
                    f"which has more rows (at least {stop})"
                )
            frame = frame.assign(**{name: labels.iloc[at:stop].to_numpy()})
        elif name is not None and name not in frame.columns:
            raise DataInputError(f"{source}: no label column {name!r} (columns: {_names(frame)})")
        at += len(frame)
        yield frame, raw.missing
    if labels is not None and last and at != len(labels):
        raise DataInputError(f"{job.labels_path}: {len(labels)} labels for the {at} rows of {source}")


def _facts(planned: tuple[Partition, int | None, bool], job: _Job) -> list[_ChunkFacts]:
    """On a worker: evaluate a partition chunk by chunk; return the facts the client's bookkeeping needs."""
    part, start, last = planned
    found: list[_ChunkFacts] = []
    with keyed(job.keys):
        for frame, missing in _frames(part, job, start, last):
            ev = evaluate(frame, job.contract, missing=missing)
            keys = batch_keys(job.contract, ev, frame)
            hits = []
            for hit in ev.hits:
                rows = np.flatnonzero(hit.mask)
                cells = None
                if hit.values is not None:
                    cells = hit.values.take(rows[: job.max_row_findings]).tolist()
                hits.append(_HitFacts(hit.rule_id, hit.column, rows, hit.reason, cells))
            columns = [str(name) for name in frame.columns]
            found.append(_ChunkFacts(len(frame), columns, hits, keys, label_counts(ev), _digest(keys.rows)))
    return found


def _again(
    planned: tuple[Partition, int | None, bool], job: _Job, digests: list[bytes]
) -> Iterator[tuple[int, Any]]:
    """The partition's chunks read a second time, each refused unless its row hashes are those of the
    first reading (the file changed in between)."""
    part = planned[0]
    count = 0
    for number, (frame, missing) in enumerate(_frames(part, job, planned[1], planned[2])):
        keys = batch_keys(job.contract, evaluate(frame, job.contract, missing=missing), frame)
        if number >= len(digests) or _digest(keys.rows) != digests[number]:
            break
        count = number + 1
        yield number, frame
    if count != len(digests) or count == 0:
        raise DataError(
            f"{part.source}: changed while it was checked (partition {part.number} reads otherwise)"
        )


def _cells(
    planned: tuple[Partition, int | None, bool],
    job: _Job,
    digests: list[bytes],
    wanted: dict[int, dict[str, np.ndarray]],
) -> dict[int, dict[str, list[Any]]]:
    """On a worker: the cells at `wanted` rows ({chunk: {column: rows}}), as findings show them."""
    found: dict[int, dict[str, list[Any]]] = {}
    with keyed(job.keys):
        for number, frame in _again(planned, job, digests):
            if number in wanted:
                found[number] = {c: frame[c].take(rows).tolist() for c, rows in wanted[number].items()}
    return found


def _rows_out(
    planned: tuple[Partition, int | None, bool],
    job: _Job,
    digests: list[bytes],
    plans: list[tuple[np.ndarray, list[str], int]],
    *,
    accepted: bool,
    rejected: bool,
) -> list[tuple[Any, Any]]:
    """On a worker: per chunk, its accepted rows and its rejected rows (with their input row and reasons),
    as `Sinks.write` sends them to the output and the quarantine."""
    out: list[tuple[Any, Any]] = []
    with keyed(job.keys):
        for number, frame in _again(planned, job, digests):
            index, reasons, start = plans[number]
            mask = np.zeros(len(frame), dtype=bool)
            mask[index] = True
            good = frame[~mask] if accepted else None
            bad = (
                frame[mask].assign(**{ROW_COLUMN: start + index, REASONS_COLUMN: reasons})
                if rejected
                else None
            )
            out.append((good, bad))
    return out


def _failure(part: Partition, error: BaseException) -> PipewardenError:
    if isinstance(error, PipewardenError):
        return error
    return DataError(
        f"{part.source}: partition {part.number} failed on the cluster "
        f"({type(error).__name__}: {str(error)[:200]}); the check did not complete"
    )


def _hits(facts: _ChunkFacts) -> list[Hit]:
    """The worker's hits again: full masks, and the shown cells where findings read them."""
    hits = []
    for fact in facts.hits:
        mask = np.zeros(facts.rows, dtype=bool)
        mask[fact.rows] = True
        values = None
        if fact.cells is not None:
            values = np.empty(facts.rows, dtype=object)
            for row, cell in zip(fact.rows[: len(fact.cells)].tolist(), fact.cells, strict=True):
                values[row] = cell
        hits.append(Hit(fact.rule_id, fact.column, mask, fact.reason, values))
    return hits


@contextmanager
def _connected(client: Any, scheduler: str | None) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from pipewarden.engine import dask_client

    with dask_client(scheduler) as made:
        yield made


def _workers(client: Any) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))


def _planned(parts: list[Partition]) -> list[tuple[Partition, int | None, bool]]:
    """Each partition with its first row where known ahead (Parquet) and whether it is the last."""
    starts: list[int | None] = []
    at: int | None = 0
    for part in parts:
        starts.append(at)
        at = at + part.rows if at is not None and part.rows is not None else None
    if len(parts) == 1:
        starts = [0]
    return [
        (part, start, i == len(parts) - 1) for i, (part, start) in enumerate(zip(parts, starts, strict=True))
    ]


def check_dask(
    source: Path | str,
    *,
    contract: Contract,
    quarantine: Path | str | None = None,
    output: Path | str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    labels_path: Path | str | None = None,
    fmt: str | None = None,
    max_row_findings: int = DEFAULT_MAX_ROW_FINDINGS,
    max_tracked: int = DEFAULT_MAX_TRACKED,
    scheduler: str | None = None,
    client: Any = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
) -> CheckResult:
    """`check` on a Dask cluster: the same result (findings, their order, the rows written, the counts),
    the file's partitions read and evaluated by the workers, which must see it at the same path. The
    output and quarantine files are written by the client. `client`, `scheduler`: as `scan_path_dask`.
    A partition that fails, or whose worker dies, raises `DataError`: the check never passes without it.

    >>> result = check_dask("big.parquet", contract=Contract.load("contract.yaml"))  # doctest: +SKIP
    """
    if chunk_rows < 1 or partition_rows < 1 or partition_bytes < 1:
        raise DataInputError(f"{source}: chunk_rows, partition_rows and partition_bytes must be positive")
    quarantine_path = Path(quarantine) if quarantine is not None else None
    output_path = Path(output) if output is not None else None
    name, path = str(source), Path(source)
    reader = detect(path, source=name, fmt=fmt)
    input_format, shape = reader.name, reader.row_shape(path, source=name)
    writes = quarantine_path is not None or output_path is not None
    whole = labels_path is not None and reader.name != "parquet"  # a CSV range does not know its first row
    parts = partitions(
        path,
        source=name,
        reader=reader,
        rows=partition_rows,
        size=partition_bytes,
        chunk_rows=chunk_rows,
        whole=whole,
    )
    job = _Job(
        contract=contract,
        keys=RunKeys.draw(),
        chunk_rows=chunk_rows,
        numeric=() if writes else tuple(spec.name for spec in contract.columns if spec.numeric),
        label=contract.label if labels_path is not None else None,
        labels_path=os.fspath(labels_path) if labels_path is not None else None,
        max_row_findings=max_row_findings,
    )
    state = _State(contract=contract, source=name, max_row_findings=max_row_findings, max_tracked=max_tracked)
    sinks = None
    if writes:
        sinks = Sinks(
            source=path,
            input_format=input_format,
            quarantine=quarantine_path,
            output=output_path,
            label=contract.label,
            row_shape=shape,
        )
    try:
        with _connected(client, scheduler) as connected:
            _run(connected, _planned(parts), job, state, sinks)
        if state.rows == 0:
            raise DataInputError(f"{name}: empty file (no rows)")
        if state.accepted + state.quarantined != state.rows:  # never: but fail closed if it ever were
            raise DataError(f"{name}: row accounting broken")
        if sinks is not None:
            sinks.commit()
    except BaseException:
        if sinks is not None:
            sinks.abort()
        raise
    return check_result(state, quarantine_path, output_path)


def _run(
    client: Any,
    planned: list[tuple[Partition, int | None, bool]],
    job: _Job,
    state: _State,
    sinks: Sinks | None,
) -> None:
    """The bookkeeping, partition after partition in input order, while the workers evaluate ahead."""
    from pipewarden.engine import in_order

    window = 2 * _workers(client) + 1
    shared = client.scatter([job], broadcast=True, hash=False)[0]
    writing: deque[tuple[Partition, Any]] = deque()
    for outcome in in_order(client, _facts, planned, window=window, job=shared):
        part = planned[outcome.index][0]
        if outcome.error is not None:
            raise _failure(part, outcome.error)
        facts: list[_ChunkFacts] = outcome.value
        if part.rows is not None and sum(f.rows for f in facts) != part.rows:
            raise DataError(f"{part.source}: partition {part.number} holds other rows than its footer says")
        digests = [f.digest for f in facts]
        starts: list[int] = []
        chunks: list[list[Hit]] = []
        holders: list[dict[str, np.ndarray]] = []
        for chunk in facts:
            start = state.rows + sum(f.rows for f in facts[: len(starts)])
            shown: dict[str, np.ndarray] = {}

            def cells(column: str, rows: int = chunk.rows, into: dict[str, np.ndarray] = shown) -> np.ndarray:
                into[column] = np.empty(rows, dtype=object)
                return into[column]

            chunks.append(_hits(chunk) + repeat_hits(state, chunk.keys, start, cells))
            starts.append(start)
            holders.append(shown)
        wanted = _listed(state, chunks)
        if wanted:
            future = client.submit(_cells, planned[outcome.index], shared, digests, wanted, pure=False)
            try:
                got = future.result()
            except Exception as exc:
                raise _failure(part, exc) from exc
            for number, columns in got.items():
                for column, values in columns.items():
                    for row, cell in zip(wanted[number][column].tolist(), values, strict=True):
                        holders[number][column][row] = cell
        plans = []
        for chunk, hits, start in zip(facts, chunks, starts, strict=True):
            _, index, reasons = account(
                state, hits, columns=chunk.columns, rows=chunk.rows, start=start, labels=chunk.labels
            )
            plans.append((index, reasons, start))
        if sinks is not None:
            future = client.submit(
                _rows_out,
                planned[outcome.index],
                shared,
                digests,
                plans,
                accepted=sinks.output is not None,
                rejected=sinks.quarantine is not None,
                pure=False,
            )
            writing.append((part, future))
            while len(writing) > window:
                _write(sinks, *writing.popleft())
    while writing and sinks is not None:
        _write(sinks, *writing.popleft())


def _listed(state: _State, chunks: list[list[Hit]]) -> dict[int, dict[str, np.ndarray]]:
    """The rows whose repeated unique value a finding will show ({chunk: {column: rows}}), counted as
    `_row_findings` lists them: the first `max_row_findings` of the rule, in input order."""
    taken = state.listed[_UNIQUE]
    wanted: dict[int, dict[str, np.ndarray]] = {}
    if not RULES[_UNIQUE].per_row:
        return wanted
    for number, hits in enumerate(chunks):
        for hit in hits:
            if hit.rule_id != _UNIQUE or hit.column is None:
                continue
            rows = np.flatnonzero(hit.mask)
            room = max(state.max_row_findings - taken, 0)
            taken += min(room, int(rows.size))
            if room:
                wanted.setdefault(number, {})[hit.column] = rows[:room]
    return wanted


def _write(sinks: Sinks, part: Partition, future: Any) -> None:
    try:
        frames = future.result()
    except Exception as exc:
        raise _failure(part, exc) from exc
    finally:
        future.release()
    for good, bad in frames:
        if sinks.output is not None:
            sinks.output.write(good)
        if sinks.quarantine is not None:
            sinks.quarantine.write(bad)


def _screen_task(path: str, options: dict[str, Any]) -> tuple[Report, int, np.ndarray, dict[str, Any]]:
    result = screen_file(path, **options)
    return result.report, result.rows, result.flagged, dict(result.estimates)


def screen_file_dask(
    path: Path | str,
    *,
    label: str | None = None,
    labels_path: Path | None = None,
    reference: Path | str | None = None,
    fpr: float = 0.01,
    checks: Iterable[str] | None = None,
    quarantine: Path | str | None = None,
    output: Path | str | None = None,
    fmt: str | None = None,
    seed: int = 0,
    scheduler: str | None = None,
    client: Any = None,
) -> ScreenResult:
    """`screen_file` run whole by one worker (the screen needs every row at once): the same result, the
    memory and the cores of the worker, not the client's. The worker reads `path` and `reference` and
    writes `quarantine` and `output` at the paths given. `client`, `scheduler`: as `scan_path_dask`.

    >>> result = screen_file_dask("train.csv", label="y", scheduler="tls://sched:8786")  # doctest: +SKIP
    """
    options: dict[str, Any] = {
        "label": label,
        "labels_path": Path(labels_path) if labels_path is not None else None,
        "reference": os.fspath(reference) if reference is not None else None,
        "fpr": fpr,
        "checks": list(checks) if checks is not None else None,
        "quarantine": os.fspath(quarantine) if quarantine is not None else None,
        "output": os.fspath(output) if output is not None else None,
        "fmt": fmt,
        "seed": seed,
    }
    with _connected(client, scheduler) as connected:
        future = connected.submit(_screen_task, os.fspath(path), options, pure=False)
        try:
            report, rows, flagged, estimates = future.result()
        except PipewardenError:
            raise
        except Exception as exc:
            raise DataError(
                f"{path}: the screen failed on the cluster ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        finally:
            future.release()
    if np.asarray(flagged).shape != (rows,):  # never: but fail closed
        raise DataError(f"{path}: the screen's answer does not cover every row")
    return ScreenResult(report=report, rows=rows, flagged=flagged, estimates=MappingProxyType(estimates))
