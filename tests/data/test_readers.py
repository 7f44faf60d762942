"""Reading data files: every format round-trips, chunks cover every row once, and bad input is a clear
DataInputError naming the file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipewarden.data import iter_table, read_table
from pipewarden.errors import DataInputError

FRAME = pd.DataFrame(
    {
        "age": [31, 45, 27, 60, 38],
        "score": [0.5, 1.25, -3.5, 2.0, 0.0],
        "city": ["Oslo", "Lima", "=cmd|' /C calc'!A0", "Pune", "Kyiv"],
        "y": [0, 1, 1, 0, 1],
    }
)


def _write(path: Path, frame: pd.DataFrame = FRAME) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_table_format_round_trips(tmp_path: Path, suffix: str) -> None:
    table = read_table(_write(tmp_path / f"rows{suffix}"), label="y")
    assert table.label == "y" and table.shape is None
    assert list(table.frame.columns) == ["age", "score", "city", "y"]
    got = table.frame.astype(str).to_numpy().tolist()
    want = FRAME.astype(str).to_numpy().tolist()
    if suffix == ".csv":  # CSV is text: every cell exactly as written, nothing converted
        want = [[str(v) for v in row] for row in FRAME.astype(object).to_numpy().tolist()]
    assert got == want
    # A formula cell is kept as the user wrote it, to be judged by the check.
    assert table.frame["city"][2] == "=cmd|' /C calc'!A0"


def test_csv_keeps_nul_bytes_and_empty_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b"a,b\nx\x00y,1\n,2\n")
    table = read_table(path)
    assert table.frame["a"][0] == "x\x00y"
    assert pd.isna(table.frame["a"][1])


def test_npy_two_d_gives_feature_columns_and_labels_from_a_file(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    table = read_table(tmp_path / "x.npy", labels_path=tmp_path / "y.npy")
    assert list(table.frame.columns) == ["f0", "f1", "f2", "label"]
    assert table.frame[["f0", "f1", "f2"]].to_numpy().tolist() == x.tolist()
    assert table.frame["label"].tolist() == [0, 1, 0, 1] and table.label == "label"
    (tmp_path / "y.txt").write_text("cat\ndog\ncat\ndog\n")
    assert read_table(tmp_path / "x.npy", labels_path=tmp_path / "y.txt", label="kind").labels.tolist() == [
        "cat",
        "dog",
        "cat",
        "dog",
    ]


def test_npy_images_are_flattened_row_wise_and_keep_their_shape(tmp_path: Path) -> None:
    images = np.arange(5 * 4 * 4 * 1, dtype=np.uint8).reshape(5, 4, 4, 1)
    np.save(tmp_path / "img.npy", images)
    table = read_table(tmp_path / "img.npy")
    assert table.shape == (4, 4, 1) and table.frame.shape == (5, 16)
    assert table.frame.iloc[3].to_numpy().tolist() == images[3].reshape(-1).tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_chunks_cover_every_row_once_in_order(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"i": np.arange(23), "s": [f"v{i}" for i in range(23)]})
    path = _write(tmp_path / f"rows{suffix}", frame)
    chunks = list(iter_table(path, chunk_rows=5))
    assert [c.start for c in chunks] == [0, 5, 10, 15, 20]
    assert [c.rows for c in chunks] == [5, 5, 5, 5, 3]
    assert pd.concat([c.frame for c in chunks])["i"].astype(int).tolist() == list(range(23))


def test_npy_chunks_are_slices_of_the_array(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(40, dtype=np.int64).reshape(10, 4))
    chunks = list(iter_table(tmp_path / "x.npy", chunk_rows=3))
    assert [c.start for c in chunks] == [0, 3, 6, 9]
    assert chunks[-1].frame.to_numpy().tolist() == [[36, 37, 38, 39]]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("empty.csv", b"", "empty.csv: empty file"),
        ("header.csv", b"a,b\n", "header.csv: empty file (no rows)"),
        ("blank.jsonl", b"\n\n", "blank.jsonl: empty file"),
        ("latin1.csv", b"name\ncaf\xe9\n", "latin1.csv: binary content that is not Parquet or .npy"),
        ("short.csv", b"a,b,c\n1,2,3\n4,5\n", "short.csv: ragged row: expected 3 columns, got 2 fields"),
        ("long.csv", b"a,b\n1,2\n3,4,5\n", "long.csv: ragged row: expected 2 columns, got 3 fields"),
        ("twice.csv", b"a,a\n1,2\n", "twice.csv: column 'a' appears twice"),
        ("bad.jsonl", b'{"a": 1}\n{"a": 2,}\n', "bad.jsonl: line 2 is not valid JSON"),
        ("list.jsonl", b'{"a": 1}\n[1, 2]\n', "list.jsonl: line 2 is a JSON list, not an object"),
        ("model.csv", pickle.dumps({"a": 1}), "model.csv: a Python pickle, not a data file"),
        ("archive.parquet", b"PK\x03\x04rest", "archive.parquet: a zip archive, not a data file"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataInputError) as caught:
        read_table(path)
    assert str(caught.value).startswith(str(tmp_path / expected.split(":")[0]))
    assert expected.split(": ", 1)[1] in str(caught.value)


def test_a_file_that_is_not_what_its_name_says_is_refused(tmp_path: Path) -> None:
    parquet_named_csv = tmp_path / "rows.csv"
    pq.write_table(pa.table({"a": [1, 2]}), parquet_named_csv)
    with pytest.raises(DataInputError, match=r"rows\.csv: the content is parquet, not csv as its name says"):
        read_table(parquet_named_csv)
    csv_named_npy = tmp_path / "x.npy"
    csv_named_npy.write_text("a,b\n1,2\n")
    with pytest.raises(DataInputError, match=r"x\.npy: the content is csv, not npy as its name says"):
        read_table(csv_named_npy)
    jsonl = _write(tmp_path / "rows.jsonl")
    with pytest.raises(
        DataInputError, match="the content is jsonl, not parquet as the format 'parquet' asked"
    ):
        read_table(jsonl, fmt="parquet")


def test_a_pickled_npy_is_refused_without_being_loaded(tmp_path: Path) -> None:
    # An object array in .npy is a pickle inside (CWE-502): loading it would run the pickle's code.
    # np.save writes it with allow_pickle=True; this marker would be created if it were ever unpickled.
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    path = tmp_path / "evil.npy"
    np.save(path, np.array([Payload(), 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataInputError, match=r"evil\.npy: an array of Python objects .* refused"):
        read_table(path)
    assert not marker.exists()


def test_label_column_problems_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "rows.csv")
    with pytest.raises(DataInputError, match=r"rows\.csv: no label column 'target' \(columns: age, score"):
        read_table(path, label="target")
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    with pytest.raises(DataInputError, match=r"y\.npy: 3 labels for .*x\.npy, which has more rows"):
        read_table(tmp_path / "x.npy", labels_path=tmp_path / "y.npy")
    np.save(tmp_path / "y5.npy", np.arange(5))
    with pytest.raises(DataInputError, match=r"y5\.npy: 5 labels for the 4 rows of"):
        read_table(tmp_path / "x.npy", labels_path=tmp_path / "y5.npy")


def test_parquet_nulls_and_nans_stay_apart_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"x": pa.array([1.0, None, float("nan")])}), path)
    (chunk,) = iter_table(path)
    assert chunk.missing["x"].tolist() == [False, True, False]


def test_csv_number_columns_parse_while_reading_and_fall_back_to_text_where_a_cell_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small read blocks (about 25 rows each), so the bad cell is met after some chunks were yielded parsed.
    monkeypatch.setattr("pipewarden.data._readers._csv._BLOCK_BYTES", 256)
    amount = [f"{i * 0.5}" for i in range(100)]
    amount[45] = "abc"
    amount[10] = ""  # an empty cell: a null, not an error
    frame = pd.DataFrame({"amount": amount, "qty": [str(i) for i in range(100)], "note": ["n"] * 100})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    chunks = list(iter_table(path, chunk_rows=12, numeric=["amount", "qty"]))
    assert [c.start for c in chunks] == list(range(0, 100, 12))
    kinds = [c.frame["amount"].dtype.kind for c in chunks]
    parsed = kinds.count("f")
    assert 1 <= parsed <= 3 and kinds[parsed:] == ["O"] * (len(chunks) - parsed)  # text from the bad cell on
    assert all(c.frame["qty"].dtype.kind == "f" for c in chunks)  # a column where every cell parses stays so
    assert all(c.frame["note"].dtype.kind == "O" for c in chunks)  # not named: text
    assert chunks[0].missing["amount"].tolist() == [i == 10 for i in range(12)]
    whole = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert len(whole) == 100 and whole["qty"].tolist() == [float(i) for i in range(100)]
    assert whole["amount"].astype(str).tolist()[44:47] == ["22.0", "abc", "23.0"]


def test_a_ragged_csv_is_refused_when_number_columns_are_parsed_too(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(50)) + "7\n")
    with pytest.raises(DataInputError, match=r"r\.csv: ragged row"):
        list(iter_table(path, chunk_rows=8, numeric=["a"]))
