"""`check`: every rule, the always-on content checks (each with a benign counterpart that must pass),
quarantine accounting, and chunked reading giving the same answer as one chunk."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipewarden.data import (
    REASONS_COLUMN,
    ROW_COLUMN,
    ColumnSpec,
    Contract,
    check,
    profile,
    read_table,
    table_from_frame,
)
from pipewarden.errors import DataInputError

CONTRACT = Contract(
    columns=(
        ColumnSpec(name="id", dtype="string", pattern="[0-9]{4}", unique=True),
        ColumnSpec(name="amount", dtype="number", minimum=-100, maximum=100),
        ColumnSpec(name="qty", dtype="integer", minimum=0, maximum=50, nullable=True),
        ColumnSpec(name="note", dtype="string", nullable=True, min_length=1, max_length=20),
        ColumnSpec(name="kind", dtype="category", categories=("a", "b")),
        ColumnSpec(name="y", dtype="integer"),
    ),
    label="y",
    labels=("0", "1"),
    max_duplicate_fraction=0.0,
)


def _rows(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"{i:04d}" for i in range(n)],
            "amount": [f"{(i % 13 - 6) * 1.5}" for i in range(n)],
            "qty": [str(i % 7) for i in range(n)],
            "note": [f"note {i}" for i in range(n)],
            "kind": ["a" if i % 2 else "b" for i in range(n)],
            "y": [str(i % 2) for i in range(n)],
        }
    )


def _check(
    tmp_path: Path, frame: pd.DataFrame, contract: Contract = CONTRACT, **kw: object
) -> list[tuple[str, int | None, str | None]]:
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)  # a lone CR stays inside its cell
    result = check(path, contract=contract, **kw)  # type: ignore[arg-type]
    assert result.accepted + result.quarantined == result.rows == len(frame)
    return sorted(
        (
            (f.rule_id, f.location.row, f.location.column)
            for f in result.report.findings
            if f.rule_id != "PW-DATA-100"
        ),
        key=str,
    )


def test_clean_rows_pass_with_only_the_accounting_finding(tmp_path: Path) -> None:
    frame = _rows()
    frame.to_csv(tmp_path / "batch.csv", index=False)
    result = check(tmp_path / "batch.csv", contract=CONTRACT)
    assert [f.rule_id for f in result.report.findings] == ["PW-DATA-100"]
    assert (result.rows, result.accepted, result.quarantined) == (12, 12, 0)
    assert result.report.findings[0].evidence == {"rows": 12, "accepted": 12, "quarantined": 0}


@pytest.mark.parametrize(
    ("column", "bad", "benign", "rule"),
    [
        # CWE-1236: a leading = + - @ makes a spreadsheet evaluate the cell; so does one after whitespace,
        # or a leading tab / carriage return.
        ("note", '=HYPERLINK("http://x")', "a=b", "PW-DATA-120"),
        ("note", "+cmd|' /C calc'!A0", "c++ rocks", "PW-DATA-120"),
        ("note", "-2+3", "-3.5", "PW-DATA-120"),
        ("note", "@SUM(A1:A9)", "me@example.org", "PW-DATA-120"),
        ("note", "  =1+1", "  1+1", "PW-DATA-120"),
        ("note", "\t=1+1", "x\ty", "PW-DATA-120"),
        ("note", "\rx", "line\nbreak", "PW-DATA-120"),
        ("note", "a\x00b", "café", "PW-DATA-121"),
        ("note", "bell\x07", "tab\there", "PW-DATA-121"),
        ("note", "abc\u202edef", "abc-def", "PW-DATA-121"),  # a bidi override (CVE-2021-42574)
        ("amount", "nan", "1e1", "PW-DATA-123"),
        ("amount", "-Infinity", "-0.5", "PW-DATA-123"),
    ],
)
def test_dangerous_content_is_rejected_and_its_benign_twin_is_not(
    tmp_path: Path, column: str, bad: str, benign: str, rule: str
) -> None:
    contract = Contract(
        columns=(
            ColumnSpec(name="note", dtype="string", nullable=True),
            ColumnSpec(name="amount", dtype="number", nullable=True),
        )
    )
    frame = pd.DataFrame({"note": ["x", "y"], "amount": ["1", "2"]})
    frame.loc[0, column] = bad
    frame.loc[1, column] = benign
    found = _check(tmp_path, frame, contract)
    assert (rule, 0, column) in found
    assert not [f for f in found if f[1] == 1], found


def test_a_negative_number_in_a_number_column_is_no_formula(tmp_path: Path) -> None:
    frame = pd.DataFrame({"amount": ["-3.5", "-1e3", "+2"]})
    contract = Contract(columns=(ColumnSpec(name="amount", dtype="number"),))
    assert _check(tmp_path, frame, contract) == []


def test_oversized_text_is_rejected_at_the_contracts_cap(tmp_path: Path) -> None:
    frame = pd.DataFrame({"note": ["x" * 70_000, "x" * 1_000]})
    contract = Contract(columns=(ColumnSpec(name="note", dtype="string"),))
    assert _check(tmp_path, frame, contract) == [("PW-DATA-122", 0, "note")]
    small = Contract(columns=contract.columns, max_string_bytes=500)
    assert _check(tmp_path, frame, small) == [("PW-DATA-122", 0, "note"), ("PW-DATA-122", 1, "note")]


def test_every_contract_rule_names_its_row_and_column(tmp_path: Path) -> None:
    frame = _rows()
    frame.loc[1, "amount"] = "lots"  # wrong type
    frame.loc[2, "qty"] = "2.5"  # not an integer
    frame.loc[3, "amount"] = "101"  # above the maximum
    frame.loc[4, "kind"] = "c"  # not a category
    frame.loc[5, "note"] = "x" * 21  # too long
    frame.loc[6, "id"] = "12a4"  # breaks the pattern
    frame.loc[7, "id"] = "0000"  # repeats row 0's id
    frame.loc[8, "y"] = "2"  # outside the label set
    frame.loc[9, "kind"] = ""  # missing where a value is needed
    frame.loc[10, "qty"] = ""  # missing, allowed
    assert _check(tmp_path, frame) == sorted(
        [
            ("PW-DATA-103", 1, "amount"),
            ("PW-DATA-103", 2, "qty"),
            ("PW-DATA-105", 3, "amount"),
            ("PW-DATA-106", 4, "kind"),
            ("PW-DATA-107", 5, "note"),
            ("PW-DATA-108", 6, "id"),
            ("PW-DATA-109", 7, "id"),
            ("PW-DATA-111", 8, "y"),
            ("PW-DATA-104", 9, "kind"),
        ],
        key=str,
    )


def test_schema_drift_and_row_count_are_table_findings(tmp_path: Path) -> None:
    frame = _rows().drop(columns=["note"]).assign(extra="1")
    bounded = Contract(columns=CONTRACT.columns, label="y", labels=("0", "1"), min_rows=20)
    found = _check(tmp_path, frame, bounded)
    assert ("PW-DATA-102", None, "extra") in found
    assert ("PW-DATA-110", None, None) in found
    # "note" is nullable: missing it is drift, but no row breaks a rule because of it.
    assert ("PW-DATA-101", None, "note") in found
    assert not [f for f in found if f[1] is not None]
    without_kind = _check(tmp_path, _rows().drop(columns=["kind"]))
    assert ("PW-DATA-101", None, "kind") in without_kind  # and every row is quarantined: it cannot comply


def test_duplicate_floods_beyond_the_allowance_are_quarantined(tmp_path: Path) -> None:
    base = _rows(100).drop(columns=["id"])
    contract = Contract(columns=CONTRACT.columns[1:], label="y", max_duplicate_fraction=0.02)
    few = pd.concat([base, base.iloc[[3]]], ignore_index=True)  # 1 duplicate in 101 rows: allowed
    assert _check(tmp_path, few, contract) == []
    flood = pd.concat([base, pd.concat([base.iloc[[3]]] * 30)], ignore_index=True)
    found = _check(tmp_path, flood, contract)
    assert ("PW-DATA-113", None, None) in found
    refused = [f for f in found if f[0] == "PW-DATA-114"]
    # The accepted rows never hold more duplicates than the allowed fraction: 2% of 130 rows is 3.
    assert len(refused) == 30 - 3


def test_distinct_rows_of_small_whole_numbers_are_never_taken_for_duplicates(tmp_path: Path) -> None:
    # Floats that are small whole numbers differ only in their high bits; a row hash that does not mix
    # each column on its own before combining them folds such rows onto each other (13% of this grid did),
    # and the "duplicates" were quarantined.
    from pipewarden.data import _hashing

    a, b = np.meshgrid(np.arange(300, dtype=float), np.arange(300, dtype=float))
    for seed in range(3):  # a few key draws, fixed so the test is deterministic
        keys = np.random.default_rng(seed).integers(0, 2**63, 256, dtype=np.uint64)
        original = _hashing._KEYS
        _hashing._KEYS = keys
        try:
            hashes = _hashing.row_hashes([a.ravel(), b.ravel(), np.full(a.size, 7, dtype=np.uint64)])
        finally:
            _hashing._KEYS = original
        assert np.unique(hashes).size == a.size
    frame = pd.DataFrame({"x": a.ravel()[:5000], "y": b.ravel()[:5000]})
    contract = Contract(
        columns=(ColumnSpec(name="x", dtype="number"), ColumnSpec(name="y", dtype="number")),
        max_duplicate_fraction=0.0,
    )
    assert _check(tmp_path, frame, contract) == []


def test_a_sudden_label_shift_is_reported_and_a_small_wobble_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    contract = Contract(
        columns=(ColumnSpec(name="x", dtype="number"), ColumnSpec(name="y", dtype="integer")),
        label="y",
        labels=("0", "1"),
        class_balance=(("0", 0.5), ("1", 0.5)),
        balance_tolerance=0.1,
        max_duplicate_fraction=1.0,
    )
    wobble = pd.DataFrame({"x": rng.random(1000), "y": rng.choice([0, 1], 1000, p=[0.53, 0.47])})
    assert _check(tmp_path, wobble, contract) == []
    shifted = pd.DataFrame({"x": rng.random(1000), "y": rng.choice([0, 1], 1000, p=[0.8, 0.2])})
    assert _check(tmp_path, shifted, contract) == [("PW-DATA-112", None, "y")]


def _messy(n: int, seed: int) -> pd.DataFrame:
    """Generated rows, about a fifth of them breaking one rule or another."""
    rng = np.random.default_rng(seed)
    frame = _rows(n)
    frame["id"] = [f"{i:04d}" for i in rng.permutation(n)]
    spots = rng.choice(n, size=n // 5, replace=False)
    for k, row in enumerate(spots):
        column, value = [
            ("amount", "999"),
            ("amount", "=1+1"),
            ("qty", "-1"),
            ("kind", "z"),
            ("note", "a\x00"),
            ("id", "0001"),
            ("y", "5"),
        ][k % 7]
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_accepted_plus_quarantined_is_the_input_and_nothing_is_lost(tmp_path: Path, suffix: str) -> None:
    frame = _messy(300, seed=1)
    path = tmp_path / f"batch{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    result = check(
        path, contract=CONTRACT, quarantine=tmp_path / f"q{suffix}", output=tmp_path / f"ok{suffix}"
    )
    assert result.rows == 300 and result.accepted + result.quarantined == 300 and result.quarantined > 50
    summary = next(f for f in result.report.findings if f.rule_id == "PW-DATA-100")
    assert (
        summary.evidence["accepted"] == result.accepted
        and summary.evidence["quarantined"] == result.quarantined
    )
    quarantined = read_table(tmp_path / f"q{suffix}").frame
    accepted = read_table(tmp_path / f"ok{suffix}").frame
    assert len(quarantined) == result.quarantined and len(accepted) == result.accepted
    assert quarantined[REASONS_COLUMN].str.contains("PW-DATA-1").all()
    rows = quarantined[ROW_COLUMN].astype(int).tolist()
    kept = sorted(set(range(300)) - set(rows))
    union = pd.concat(
        [accepted.assign(**{ROW_COLUMN: kept}), quarantined.drop(columns=[REASONS_COLUMN])], ignore_index=True
    )
    union = union.assign(**{ROW_COLUMN: union[ROW_COLUMN].astype(int)}).sort_values(ROW_COLUMN)
    assert (
        union.drop(columns=[ROW_COLUMN]).astype(str).to_numpy().tolist()
        == frame.astype(str).to_numpy().tolist()
    )


def test_npy_output_and_quarantine(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((50, 3))
    x[7, 1] = np.nan
    x[9, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 50))
    contract = profile(read_table(tmp_path / "x.npy", labels_path=tmp_path / "y.npy"))
    result = check(
        tmp_path / "x.npy",
        contract=contract,
        labels_path=tmp_path / "y.npy",
        quarantine=tmp_path / "q.npy.csv",
        output=tmp_path / "ok.npy",
    )
    assert (result.rows, result.quarantined) == (50, 2)
    assert np.load(tmp_path / "ok.npy").shape == (48, 3)
    assert np.load(tmp_path / "ok.labels.npy").shape == (48,)
    assert read_table(tmp_path / "q.npy.csv").frame[ROW_COLUMN].astype(int).tolist() == [7, 9]
    with pytest.raises(DataInputError, match=r"q\.npy: a \.npy file cannot hold the reasons"):
        check(
            tmp_path / "x.npy",
            contract=contract,
            labels_path=tmp_path / "y.npy",
            quarantine=tmp_path / "q.npy",
        )


def test_chunked_reading_gives_the_same_answer_as_one_chunk(tmp_path: Path) -> None:
    frame = _messy(200, seed=5)
    frame.to_csv(tmp_path / "batch.csv", index=False)
    answers = []
    for chunk_rows in (7, 64, 100_000):
        result = check(
            tmp_path / "batch.csv",
            contract=CONTRACT,
            chunk_rows=chunk_rows,
            quarantine=tmp_path / f"q{chunk_rows}.csv",
        )
        answers.append(
            (
                [(f.rule_id, f.location.row, f.location.column, f.message) for f in result.report.findings],
                (tmp_path / f"q{chunk_rows}.csv").read_text(),
            )
        )
    assert answers[0] == answers[1] == answers[2]


def test_the_report_stays_bounded_and_the_quarantine_has_every_row(tmp_path: Path) -> None:
    frame = pd.DataFrame({"v": ["=1"] * 30})
    contract = Contract(columns=(ColumnSpec(name="v", dtype="string"),), max_duplicate_fraction=1.0)
    frame.to_csv(tmp_path / "batch.csv", index=False)
    result = check(
        tmp_path / "batch.csv", contract=contract, max_row_findings=5, quarantine=tmp_path / "q.csv"
    )
    formula = [f for f in result.report.findings if f.rule_id == "PW-DATA-120"]
    assert len([f for f in formula if f.location.row is not None]) == 5
    (summary,) = [f for f in formula if f.location.row is None]
    assert summary.evidence == {"rows": 30, "listed": 5}
    assert len(read_table(tmp_path / "q.csv").frame) == 30


def test_a_failed_check_leaves_the_old_output_in_place(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text("old\n")
    rows = "".join(f"{i:04d},1,1,n,a,0\n" for i in range(100))
    (tmp_path / "batch.csv").write_text(
        "id,amount,qty,note,kind,y\n" + rows + "9999,1\n"
    )  # ragged at the end
    with pytest.raises(DataInputError, match="ragged row"):
        check(tmp_path / "batch.csv", contract=CONTRACT, output=tmp_path / "ok.csv", chunk_rows=10)
    assert (tmp_path / "ok.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv", "ok.csv"]


def test_a_table_in_memory_and_row_violations_for_the_guard() -> None:
    frame = pd.DataFrame(
        {
            "id": ["0001", "0002"],
            "amount": [5.0, 500.0],
            "qty": [1, 2],
            "note": ["ok", "=x"],
            "kind": ["a", "b"],
            "y": [0, 1],
        }
    )
    result = check(table_from_frame(frame, label="y"), contract=CONTRACT)
    assert (result.accepted, result.quarantined) == (1, 1)
    assert CONTRACT.row_violations(frame) == [
        (),
        ("PW-DATA-105 amount: above the maximum 100", "PW-DATA-120 note: starts like a spreadsheet formula"),
    ]


def _report(result: object) -> list[tuple[str, int | None, str | None, str]]:
    return [
        (f.rule_id, f.location.row, f.location.column, f.message)
        for f in result.report.findings  # type: ignore[attr-defined]
        if f.rule_id != "PW-DATA-100"
    ]


@pytest.mark.parametrize("bad", ["abc", "=1+2", "1,5", " "])
def test_a_bad_cell_among_parsed_numbers_is_reported_at_its_row_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    # Small read blocks: the bad cell is met after chunks whose number columns were parsed while reading.
    monkeypatch.setattr("pipewarden.data._readers._csv._BLOCK_BYTES", 512)
    frame = _rows(300)
    frame.loc[170, "amount"] = bad
    frame.to_csv(tmp_path / "batch.csv", index=False)
    fast = check(tmp_path / "batch.csv", contract=CONTRACT, chunk_rows=32)  # no rows written: parsed
    assert (fast.rows, fast.quarantined) == (300, 1)
    rows = {(f.location.row, f.location.column) for f in fast.report.findings if f.location.row is not None}
    assert rows == {(170, "amount")}
    expected = {"abc": {"PW-DATA-103"}, "=1+2": {"PW-DATA-103", "PW-DATA-120"}, "1,5": {"PW-DATA-103"}}
    assert {f.rule_id for f in fast.report.findings} - {"PW-DATA-100"} == expected.get(bad, {"PW-DATA-104"})
    # The same report as a run that reads every cell as text (rows written to a quarantine file).
    slow = check(tmp_path / "batch.csv", contract=CONTRACT, chunk_rows=32, quarantine=tmp_path / "q.csv")
    assert _report(fast) == _report(slow)


def test_reading_numbers_as_numbers_or_as_text_gives_the_same_report(tmp_path: Path) -> None:
    frame = _messy(400, seed=9)
    frame.loc[3, "amount"] = "1e3"  # out of range, written otherwise
    frame.loc[4, "qty"] = "2.5"  # not an integer
    frame.loc[5, "amount"] = "-inf"
    frame.loc[6, "qty"] = ""  # nullable: fine
    frame.to_csv(tmp_path / "batch.csv", index=False)
    reports = [
        _report(check(tmp_path / "batch.csv", contract=CONTRACT, chunk_rows=rows, **kw))  # type: ignore[arg-type]
        for rows in (16, 100_000)
        for kw in ({}, {"quarantine": tmp_path / "q.csv"})
    ]
    assert reports[0] == reports[1] == reports[2] == reports[3]
    messages = {(rule, row): message for rule, row, _, message in reports[0]}
    assert messages[("PW-DATA-105", 3)].endswith("above the maximum 100 (value 1000)")
    assert messages[("PW-DATA-103", 4)].endswith("not an integer (value 2.5)")
    assert messages[("PW-DATA-123", 5)].endswith("NaN or infinity (value -inf)")
    assert not any(row == 6 for _, row, _, _ in reports[0])


def test_a_repeat_is_found_across_chunks_of_short_and_long_text(tmp_path: Path) -> None:
    # Short cells and long ones are hashed two ways; a value must hash alike in either kind of chunk.
    contract = Contract(columns=(ColumnSpec(name="v", dtype="string", unique=True),))
    values = ["ab", "cd", "ef", "gh", "x" * 100, "cd", "ij", "y" * 5000, "ab", "x" * 100]
    pd.DataFrame({"v": values}).to_csv(tmp_path / "batch.csv", index=False)
    result = check(tmp_path / "batch.csv", contract=contract, chunk_rows=4)
    repeats = [f.location.row for f in result.report.findings if f.rule_id == "PW-DATA-109"]
    assert repeats == [5, 8, 9]


def test_the_seen_tracker_matches_a_set_and_stops_at_its_cap() -> None:
    from pipewarden.data._hashing import Seen

    rng = np.random.default_rng(11)
    calls = [rng.integers(0, 1 << 40, 3000, dtype=np.int64).astype(np.uint64) for _ in range(12)]
    calls[7][:50] = calls[2][:50]  # repeats of an earlier call
    calls[9][10] = calls[9][20]  # a repeat within one call: the later one is the repeat
    seen = Seen(1 << 20)
    known: set[int] = set()
    for hashes in calls:
        expected = []
        for h in hashes.tolist():
            expected.append(h in known)
            known.add(h)
        assert seen.repeats(hashes).tolist() == expected
    assert not seen.full
    small = Seen(100)
    small.repeats(calls[0][:80])
    assert small.repeats(calls[0][:120]).tolist() == [True] * 80 + [False] * 40 and small.full


@pytest.mark.parametrize(
    "pattern",
    [
        "[0-9]{4}",  # the shapes profile writes
        "[0-9a-f]{6}",
        "[0-9A-F]{3}",
        "[A-Z]{2}-[0-9]{4}",
        r"\d{2}x",
        r"[a-]{2}\.",
        "[0-9]+",  # not of a fixed width: RE2 decides
        "é[0-9]",
    ],
)
def test_a_fixed_width_pattern_is_decided_as_re2_decides(pattern: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipewarden.data._contract import anchored
    from pipewarden.data._text import full_match

    rng = np.random.default_rng(5)
    alphabet = list("0123456789abcdefAZ-.x é\n")
    cells = ["".join(rng.choice(alphabet, int(rng.integers(0, 8)))) for _ in range(4000)]
    cells += ["0123", "abc123", "AB-1234", "ab-1234", "12x", "a-.", "é1", "0123\n"]
    for text in (
        pa.array([*cells, None], type=pa.large_string()),
        pa.array([c for c in cells if len(c) == 4], type=pa.string()),  # one width: the bytes as a grid
    ):
        expected = pc.match_substring_regex(text, anchored(pattern)).fill_null(False)
        assert full_match(text, pattern).tolist() == expected.to_pylist()


def test_repeats_in_category_and_boolean_columns_are_found_across_chunks(tmp_path: Path) -> None:
    # A category's cells are hashed through the categories, a cell outside them from its bytes: a repeated
    # row must be found whichever way, in whichever chunk, and a near-copy must not be.
    contract = Contract(
        columns=(
            ColumnSpec(name="kind", dtype="category", categories=("a", "b")),
            ColumnSpec(name="flag", dtype="boolean"),
            ColumnSpec(name="n", dtype="integer"),
        ),
        max_duplicate_fraction=0.0,
    )
    rows = [("zz", "True", 1), ("a", "true", 2), ("zz", "True", 1), ("a", " true", 2), ("a", "true", 2)]
    pd.DataFrame(rows, columns=["kind", "flag", "n"]).to_csv(tmp_path / "batch.csv", index=False)
    for chunk_rows in (1, 2, 5):
        result = check(tmp_path / "batch.csv", contract=contract, chunk_rows=chunk_rows)
        repeats = [f.location.row for f in result.report.findings if f.rule_id == "PW-DATA-114"]
        assert repeats == [2, 4], chunk_rows
