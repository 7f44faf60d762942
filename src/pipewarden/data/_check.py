"""`check`: validate a batch against its contract, chunk by chunk, and account for every row."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipewarden.data._ahead import read_ahead
from pipewarden.data._contract import Contract
from pipewarden.data._hashing import Seen, row_hashes, value_hashes
from pipewarden.data._quarantine import Sinks
from pipewarden.data._readers import detect
from pipewarden.data._rows import Evaluation, Hit, evaluate
from pipewarden.data._rules import RULES
from pipewarden.data._table import DEFAULT_CHUNK_ROWS, Table, TableChunk, iter_table
from pipewarden.errors import DataError
from pipewarden.findings import Finding, Location, Report

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_ROW_FINDINGS",
    "DEFAULT_MAX_TRACKED",
    "BatchKeys",
    "CheckResult",
    "account",
    "batch_keys",
    "check",
    "label_counts",
    "repeat_hits",
]

DEFAULT_MAX_ROW_FINDINGS = 1000
# Uniqueness and duplicate-row tracking keep one 64-bit hash per distinct value or row: 16 Mi of them is
# 128 MiB per tracker. Past it, new values are still checked against those kept, and a finding says so.
DEFAULT_MAX_TRACKED = 1 << 24
_VALUE_CHARS = 80
_SHIFT_P_VALUE = 0.001


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of `check`: the report, and the accounting of every input row.

    ``accepted + quarantined == rows`` always holds (construction refuses anything
    else): no row is dropped silently. `quarantine` and `output` are the files
    written, if any were asked for.
    """

    report: Report
    rows: int
    accepted: int
    quarantined: int
    quarantine: Path | None = None
    output: Path | None = None

    def __post_init__(self) -> None:
        if self.accepted + self.quarantined != self.rows or min(self.accepted, self.quarantined) < 0:
            raise ValueError(
                f"row accounting broken: {self.accepted} accepted + {self.quarantined} quarantined "
                f"!= {self.rows}"
            )


@dataclass(slots=True)
class _State:
    contract: Contract
    source: str
    max_row_findings: int
    max_tracked: int
    rows: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    accepted_duplicates: int = 0
    findings: list[Finding] = field(default_factory=list)
    per_rule: Counter[str] = field(default_factory=Counter)
    listed: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    columns: dict[str, None] = field(default_factory=dict)
    unique: dict[str, Seen] = field(default_factory=dict)
    duplicate_rows: Seen | None = None


def _shown(item: Any) -> str:
    """A cell as shown in a finding: text quoted, a number plain (``5000``, ``99.5``, ``nan``)."""
    if isinstance(item, np.generic):
        item = item.item()
    if isinstance(item, float):
        text = str(int(item)) if math.isfinite(item) and item.is_integer() else repr(item)
    else:
        text = repr(item)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


def _row_findings(state: _State, hits: list[Hit], start: int) -> None:
    import numpy as np

    for hit in hits:
        rule = RULES[hit.rule_id]
        if not rule.per_row:
            continue
        rows = np.flatnonzero(hit.mask)
        state.per_rule[hit.rule_id] += int(rows.size)
        room = max(state.max_row_findings - state.listed[hit.rule_id], 0)
        state.listed[hit.rule_id] += min(room, int(rows.size))
        listed = rows[:room]
        # The shown cells in one take, not one look-up per row.
        cells = hit.values.take(listed).tolist() if hit.values is not None else [None] * listed.size
        for local, cell in zip(listed.tolist(), cells, strict=True):
            row = start + local
            value = _shown(cell) if hit.values is not None else None
            shown = f" (value {value})" if value is not None else ""
            state.findings.append(
                Finding(
                    rule_id=hit.rule_id,
                    severity=rule.severity,
                    title=rule.title,
                    message=f"{state.source} row {row}: {hit.reason}{shown}",
                    location=Location(path=state.source, row=row, column=hit.column),
                    evidence={"reason": hit.reason, **({"value": value} if value is not None else {})},
                    references=rule.references,
                )
            )


@dataclass(frozen=True, slots=True, eq=False)
class BatchKeys:
    """What the rules over the whole input (uniqueness, duplicate rows) need of one chunk: per unique column
    the mask of cells that hold a value and those cells' hashes, and one hash per row."""

    unique: dict[str, tuple[np.ndarray, np.ndarray]]
    rows: np.ndarray


def batch_keys(contract: Contract, ev: Evaluation, frame: pd.DataFrame) -> BatchKeys:
    """The hashes of one chunk for `repeat_hits` (keyed: see `pipewarden.data._hashing`)."""
    # Number columns enter the row hash as their bits (see _row_hashes); the rest by pandas' keyed hash.
    hashed = {
        str(name): None
        if isinstance(ev.values.get(str(name)), np.ndarray)
        else ev.hashes[str(name)]
        if str(name) in ev.hashes
        else value_hashes(ev.values.get(str(name), frame[name]))
        for name in frame.columns
    }
    unique: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for spec in contract.columns:
        if not spec.unique or spec.name not in ev.values:
            continue
        present = ~ev.nulls[spec.name]
        keys = hashed[spec.name]
        if keys is None:
            keys = value_hashes(ev.values[spec.name])
        unique[spec.name] = (present, keys[present])
    columns: list[np.ndarray] = []
    for name, keys in hashed.items():
        columns.append(keys if keys is not None else ev.values[name])
    return BatchKeys(unique=unique, rows=row_hashes(columns))


def repeat_hits(state: _State, keys: BatchKeys, start: int, cells: Callable[[str], Any]) -> list[Hit]:
    """Uniqueness and duplicate rows: rules over the whole input, kept across chunks in input order.
    `cells(column)` gives the chunk's cells of a unique column, shown in the findings."""
    hits: list[Hit] = []
    rows = keys.rows.size
    for name, (present, hashes) in keys.unique.items():
        seen = state.unique.setdefault(name, Seen(state.max_tracked))
        repeat = np.zeros(rows, dtype=bool)
        repeat[present] = seen.repeats(hashes)
        if repeat.any():
            hits.append(
                Hit("PW-DATA-109", name, repeat, f"{name}: value seen in an earlier row", cells(name))
            )
    if state.duplicate_rows is None:
        state.duplicate_rows = Seen(state.max_tracked)
    duplicate = state.duplicate_rows.repeats(keys.rows)
    if duplicate.any():
        # Accept a duplicate only while the accepted duplicates stay within the contract's fraction of the
        # rows seen so far: x_i = min(x_{i-1} + d_i, ceil(f * (i + 1))), solved in closed form over the chunk.
        f = state.contract.max_duplicate_fraction
        allowance = np.ceil(f * (np.arange(start, start + rows) + 1) - 1e-9)
        d = np.cumsum(duplicate)
        x = d + np.minimum(state.accepted_duplicates, np.minimum.accumulate(allowance - d))
        before = np.concatenate([[state.accepted_duplicates], x[:-1]])
        refused = duplicate & ~(x > before)
        state.duplicates += int(duplicate.sum())
        state.accepted_duplicates = int(x[-1])
        if refused.any():
            hits.append(
                Hit(
                    "PW-DATA-114",
                    None,
                    refused,
                    f"duplicate of an earlier row, beyond the allowed fraction {f:g}",
                )
            )
    return hits


def account(
    state: _State, hits: list[Hit], *, columns: list[str], rows: int, start: int, labels: dict[Any, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Count one chunk's rows and findings; return its rejected mask, their rows in the chunk and reasons."""
    for name in columns:
        state.columns.setdefault(name, None)
    rejected = np.zeros(rows, dtype=bool)
    for hit in hits:
        rejected |= hit.mask
    index = np.flatnonzero(rejected)
    reasons = np.full(index.size, "", dtype=object)
    for hit in hits:
        picked = hit.mask[index]
        reasons[picked] += f"; {hit.rule_id} {hit.reason}"
    state.labels.update(labels)
    _row_findings(state, hits, start)
    state.rows += rows
    state.quarantined += int(index.size)
    state.accepted += rows - int(index.size)
    return rejected, index, [r.removeprefix("; ") for r in reasons]


def label_counts(ev: Evaluation) -> dict[Any, int]:
    """The chunk's rows per label (as text), for the label-shift finding."""
    return ev.label_keys.dropna().value_counts().to_dict() if ev.label_keys is not None else {}


def _chunk(state: _State, chunk: TableChunk, ev: Evaluation, sinks: Sinks | None) -> None:
    frame = chunk.frame
    hits = ev.hits + repeat_hits(state, batch_keys(state.contract, ev, frame), chunk.start, frame.__getitem__)
    rejected, index, reasons = account(
        state,
        hits,
        columns=[str(name) for name in frame.columns],
        rows=len(frame),
        start=chunk.start,
        labels=label_counts(ev),
    )
    if sinks is not None:
        sinks.write(frame, rejected, chunk.start + index, reasons)


def _table_finding(
    state: _State, rule_id: str, message: str, *, column: str | None = None, **evidence: Any
) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule_id=rule_id,
        severity=rule.severity,
        title=rule.title,
        message=f"{state.source}: {message}",
        location=Location(path=state.source, column=column),
        evidence=evidence,
        references=rule.references,
    )


def _label_shift(state: _State) -> Finding | None:
    contract = state.contract
    if contract.class_balance is None or not state.labels:
        return None
    from scipy import stats

    expected = contract.balance
    total = sum(state.labels.values())
    names = sorted(set(expected) | set(state.labels))
    observed = {k: state.labels.get(k, 0) / total for k in names}
    distance = 0.5 * sum(abs(observed[k] - expected.get(k, 0.0)) for k in names)
    if distance <= contract.balance_tolerance:
        return None
    significant = True
    evidence: dict[str, Any] = {
        "total_variation": round(distance, 6),
        "tolerance": contract.balance_tolerance,
        "observed": {k: round(v, 6) for k, v in observed.items()},
        "expected": {k: expected.get(k, 0.0) for k in names},
    }
    if all(expected.get(k, 0.0) > 0 for k in names):
        chi2 = sum((state.labels.get(k, 0) - total * expected[k]) ** 2 / (total * expected[k]) for k in names)
        evidence["chi_square"] = round(chi2, 3)
        evidence["p_value"] = float(stats.chi2.sf(chi2, len(names) - 1))
        # A small batch drifts by chance: the shift must also be significant (chi-square, p < 0.001).
        significant = evidence["p_value"] < _SHIFT_P_VALUE
    if not significant:
        return None
    return _table_finding(
        state,
        "PW-DATA-112",
        f"the label distribution is {distance:.3f} (total variation) from the contract's class balance, "
        f"beyond the tolerance {contract.balance_tolerance:g}",
        column=contract.label,
        **evidence,
    )


def _table_findings(state: _State, quarantine: Path | None, output: Path | None) -> list[Finding]:
    contract = state.contract
    found: list[Finding] = []
    found += [
        _table_finding(state, "PW-DATA-101", f"column {c.name!r} of the contract is missing", column=c.name)
        for c in contract.columns
        if c.name not in state.columns
    ]
    if not contract.extra_columns:
        found += [
            _table_finding(state, "PW-DATA-102", f"column {name!r} is not in the contract", column=name)
            for name in state.columns
            if name not in contract.names
        ]
    low, high = contract.min_rows, contract.max_rows
    if (low is not None and state.rows < low) or (high is not None and state.rows > high):
        bounds = f"[{low if low is not None else 0}, {high if high is not None else 'any'}]"
        found.append(
            _table_finding(state, "PW-DATA-110", f"{state.rows} rows, outside {bounds}", rows=state.rows)
        )
    if (shift := _label_shift(state)) is not None:
        found.append(shift)
    if state.rows and state.duplicates / state.rows > contract.max_duplicate_fraction:
        found.append(
            _table_finding(
                state,
                "PW-DATA-113",
                f"{state.duplicates} of {state.rows} rows repeat an earlier row "
                f"({state.duplicates / state.rows:.2%}; "
                f"the contract allows {contract.max_duplicate_fraction:.2%})",
                duplicates=state.duplicates,
                fraction=round(state.duplicates / state.rows, 6),
                allowed=contract.max_duplicate_fraction,
            )
        )
    for rule_id, total in sorted(state.per_rule.items()):
        if total > state.max_row_findings:
            rule = RULES[rule_id]
            found.append(
                Finding(
                    rule_id=rule_id,
                    severity=rule.severity,
                    title=f"{rule.title}: {total} rows in all",
                    message=f"{state.source}: {total} rows break this rule; "
                    f"the first {state.max_row_findings} "
                    "are listed, the quarantine file has them all",
                    location=Location(path=state.source),
                    evidence={"rows": total, "listed": state.max_row_findings},
                    references=rule.references,
                )
            )
    trackers = [*state.unique.values(), *([state.duplicate_rows] if state.duplicate_rows else [])]
    if any(t.full for t in trackers):
        found.append(
            _table_finding(
                state,
                "PW-DATA-130",
                f"more than {state.max_tracked} distinct values or rows: "
                "later ones were checked only against "
                "those kept, so a repeat of a later one can be missed",
                limit=state.max_tracked,
            )
        )
    found.append(
        _table_finding(
            state,
            "PW-DATA-100",
            f"{state.rows} rows: {state.accepted} accepted, {state.quarantined} quarantined",
            rows=state.rows,
            accepted=state.accepted,
            quarantined=state.quarantined,
            **({"quarantine": str(quarantine)} if quarantine is not None else {}),
            **({"output": str(output)} if output is not None else {}),
        )
    )
    return found


def _frame_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
    for start in range(0, max(table.rows, 1), chunk_rows):
        frame = table.frame.iloc[start : start + chunk_rows].reset_index(drop=True)
        yield TableChunk(frame=frame, label=table.label, source=table.source, start=start, shape=table.shape)


def check(
    source: Path | str | Table,
    *,
    contract: Contract,
    quarantine: Path | str | None = None,
    output: Path | str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    labels_path: Path | str | None = None,
    fmt: str | None = None,
    max_row_findings: int = DEFAULT_MAX_ROW_FINDINGS,
    max_tracked: int = DEFAULT_MAX_TRACKED,
) -> CheckResult:
    """Check a data file (read in chunks of `chunk_rows`, bounded memory) or a `Table` against `contract`.

    Every row is accepted or rejected: rejected rows go to `quarantine` with their
    0-based input row and reasons, accepted rows to `output` (each file written
    atomically, in the input's format unless its name says another). The report
    lists per-row findings (at most `max_row_findings` per rule, then one
    summary finding with the total), table-level findings (schema drift, row
    count, label shift, duplicate flood) and one PW-DATA-100 finding with the
    accounting. Raises `DataInputError` for unreadable input.

    >>> result = check("batch.csv", contract=Contract.load("contract.yaml"))  # doctest: +SKIP
    >>> result.accepted + result.quarantined == result.rows
    True
    """
    quarantine_path = Path(quarantine) if quarantine is not None else None
    output_path = Path(output) if output is not None else None
    if isinstance(source, Table):
        name, input_format, shape, path = source.source, "csv", source.shape, None
        chunks: Iterator[TableChunk] = _frame_chunks(source, chunk_rows)
    else:
        name, path = str(source), Path(source)
        reader = detect(path, source=name, fmt=fmt)
        input_format, shape = reader.name, reader.row_shape(path, source=name)
        # A missing label column is schema drift (a finding), not unreadable input: only labels from a
        # separate file need the column's name here.
        label = contract.label if labels_path is not None else None
        # With no rows to write, number columns may be parsed while reading (CSV): the rows written to an
        # output or quarantine file keep every cell as it was written, so then they are read as text.
        writes = quarantine_path is not None or output_path is not None
        numeric = () if writes else [spec.name for spec in contract.columns if spec.numeric]
        # The next chunk is parsed while this one is checked (two cores: about half the time on CSV).
        chunks = read_ahead(
            iter_table(
                path, chunk_rows=chunk_rows, label=label, labels_path=labels_path, fmt=fmt, numeric=numeric
            )
        )
    state = _State(contract=contract, source=name, max_row_findings=max_row_findings, max_tracked=max_tracked)
    sinks = None
    if quarantine_path is not None or output_path is not None:
        sinks = Sinks(
            source=path,
            input_format=input_format,
            quarantine=quarantine_path,
            output=output_path,
            label=contract.label,
            row_shape=shape,
        )
    try:
        for chunk in chunks:
            _chunk(state, chunk, evaluate(chunk.frame, contract, missing=chunk.missing), sinks)
        if state.accepted + state.quarantined != state.rows:  # never: but fail closed if it ever were
            raise DataError(
                f"{name}: row accounting broken ({state.accepted} + {state.quarantined} != {state.rows})"
            )
        if sinks is not None:
            sinks.commit()
    except BaseException:
        if sinks is not None:
            sinks.abort()
        raise
    return check_result(state, quarantine_path, output_path)


def check_result(state: _State, quarantine_path: Path | None, output_path: Path | None) -> CheckResult:
    """The result of a finished check: row findings, then table findings, and the accounting."""
    # Rows in input order within each rule, whatever the chunk size: two runs render the same report.
    rows = sorted(state.findings, key=lambda f: (f.rule_id, f.location.row or 0, f.location.column or ""))
    findings = [*rows, *_table_findings(state, quarantine_path, output_path)]
    return CheckResult(
        report=Report.build(command="data check", findings=findings, targets=1),
        rows=state.rows,
        accepted=state.accepted,
        quarantined=state.quarantined,
        quarantine=quarantine_path,
        output=output_path,
    )
