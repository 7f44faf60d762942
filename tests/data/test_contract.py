"""Contracts: the YAML file people edit (round trip, errors with line numbers) and what profile learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipewarden.data import ColumnSpec, Contract, profile, read_table, table_from_frame
from pipewarden.errors import ContractError

GOOD = """\
version: 1
table:
  label: y
  labels: [0, 1]
  class_balance: {0: 0.5, 1: 0.5}
columns:
  age:
    dtype: integer
    min: 0
    max: 120
  city:
    dtype: category
    categories: [Oslo, Lima]
  y:
    dtype: integer
"""


def test_yaml_round_trips_and_says_what_the_file_is() -> None:
    contract = Contract.from_yaml(GOOD)
    assert contract.labels == ("0", "1") and contract.balance == {"0": 0.5, "1": 0.5}
    assert contract.column("age") == ColumnSpec(name="age", dtype="integer", minimum=0, maximum=120)
    text = contract.to_yaml(note="Learned from train.csv.")
    assert text.startswith("# pipewarden data contract\n")
    assert "# Learned from train.csv." in text
    assert Contract.from_yaml(text) == contract


def test_a_profiled_contract_round_trips_through_a_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "id": [f"{i:08x}" for i in rng.choice(1 << 30, 200, replace=False)],
            "x": rng.normal(size=200),
            "flag": rng.random(200) < 0.5,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1000, 200), unit="h"),
            "y": rng.choice(["cat", "dog", "it's"], 200),
        }
    )
    contract = profile(table_from_frame(frame, label="y"))
    path = tmp_path / "contract.yaml"
    path.write_text(contract.to_yaml())
    assert Contract.load(path) == contract


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\ncolumns:\n  a:\n    dtype: integer\n    nulable: true\n", 5, "unknown key 'nulable'"),
        ("columns:\n  a:\n    dtype: decimal\n", 2, "dtype 'decimal' is not one of"),
        ("columns:\n  a:\n    dtype: integer\n    min: ten\n", 4, "min must be a number, not 'ten'"),
        ("columns:\n  a:\n    dtype: integer\n    min: 5\n    max: 1\n", 2, "min 5 is above max 1"),
        ("columns:\n  a:\n    dtype: string\n  a:\n    dtype: integer\n", 4, "key 'a' appears twice"),
        (
            "columns:\n  a:\n    dtype: string\n    pattern: '(a)\\1'\n",
            2,
            "not a regular expression RE2 accepts",
        ),
        ("columns:\n  a:\n    dtype: category\n", 2, "a category column needs its categories"),
        ("columns:\n  a:\n    nullable: true\n", 2, "column 'a' has no dtype"),
        ("table:\n  label: b\ncolumns:\n  a:\n    dtype: integer\n", 2, "label column 'b' is not among"),
        ("version: 2\ncolumns: {}\n", 1, "contract version 2 is not supported"),
        ("columns:\n  a: [\n", 3, "not valid YAML"),
        ("table:\n  max_rows: lots\ncolumns:\n  a:\n    dtype: string\n", 2, "must be a whole number"),
    ],
)
def test_contract_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ContractError) as caught:
        Contract.from_yaml(text, source="contract.yaml")
    assert str(caught.value).startswith(f"contract.yaml: line {line}: "), str(caught.value)
    assert message in str(caught.value)


def test_an_empty_or_missing_contract_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="empty contract file"):
        Contract.from_yaml("", source="c.yaml")
    with pytest.raises(ContractError, match=r"nothing\.yaml: no such contract file"):
        Contract.load(tmp_path / "nothing.yaml")
    with pytest.raises(ContractError, match="at least one column"):
        Contract(columns=())


def test_profile_learns_types_ranges_with_a_margin_categories_and_patterns(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.integers(20, 61, n),  # observed 20..60
            "price": rng.uniform(-1, 1, n).round(3),
            "color": rng.choice(["red", "green", "blue"], n),
            "zip": [f"{v:05d}" for v in rng.integers(0, 99999, n)],  # leading zeros: a code, not a number
            "sku": [f"{v:06x}" for v in rng.choice(1 << 24, n, replace=False)],
            "name": [f"item {i}!" for i in range(n)],
            "y": rng.choice([0, 1], n, p=[0.7, 0.3]),
        }
    )
    frame.to_csv(tmp_path / "train.csv", index=False)
    contract = profile(read_table(tmp_path / "train.csv", label="y"), margin=0.1)
    age = contract.column("age")
    assert age.dtype == "integer" and (age.minimum, age.maximum) == (16, 64)  # 10% of 40 each side, whole
    assert contract.column("price").dtype == "number"
    assert contract.column("color").categories == ("blue", "green", "red")
    assert contract.column("zip").dtype == "string" and contract.column("zip").pattern == "[0-9]{5}"
    assert contract.column("sku").pattern == "[0-9a-f]{6}" and contract.column("sku").unique
    assert contract.column("name").pattern is None  # no simple shape: no pattern guessed
    assert contract.label == "y" and contract.labels == ("0", "1")
    balance = contract.balance
    assert abs(balance["0"] - (frame["y"] == 0).mean()) < 1e-6
    assert not any(c.nullable for c in contract.columns)


def test_profile_keeps_never_negative_data_non_negative_and_sees_missing_values() -> None:
    frame = pd.DataFrame({"count": [0, 1, 2, 3, 100], "opt": [1.0, None, 2.0, 3.0, 4.0]})
    contract = profile(frame)
    assert contract.column("count").minimum == 0
    assert contract.column("opt").nullable and not contract.column("count").nullable


def test_a_label_column_that_is_not_there_is_an_error() -> None:
    from pipewarden.errors import DataInputError

    with pytest.raises(DataInputError, match="no label column 'target'"):
        profile(pd.DataFrame({"a": [1, 2]}), label="target")
