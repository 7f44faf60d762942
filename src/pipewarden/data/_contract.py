"""The data contract: what a column and a table must look like. Valid on construction, or it raises."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipewarden.errors import ContractError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_STRING_BYTES",
    "DTYPES",
    "MAX_PATTERN_CHARS",
    "ColumnSpec",
    "Contract",
    "Scalar",
    "anchored",
    "check_pattern",
]

DTYPES = ("integer", "number", "boolean", "string", "category", "datetime")
_NUMERIC = ("integer", "number")
_TEXT = ("string", "category")
DEFAULT_MAX_STRING_BYTES = 64 * 1024
MAX_PATTERN_CHARS = 256

Scalar = str | int | float | bool


def check_pattern(pattern: str, *, where: str) -> None:
    """Refuse a pattern that is too long, is not a valid regular expression, or needs backtracking."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ContractError(
            f"{where}: pattern is {len(pattern)} characters long (at most {MAX_PATTERN_CHARS})"
        )
    # Patterns are compiled and matched by RE2 (pyarrow's regex engine): linear time whatever the input,
    # so a pattern cannot be made to backtrack for ever (CWE-1333). RE2 refuses what it cannot do in
    # linear time (backreferences, lookaround), here, when the contract is read.
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], type=pa.string()), pattern=anchored(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).split(": ", 1)[-1][:120]
        raise ContractError(
            f"{where}: pattern {pattern!r} is not a regular expression RE2 accepts (linear-time matching): "
            f"{reason}"
        ) from exc


def anchored(pattern: str) -> str:
    """The pattern matched against the whole value (a full match), not a part of it."""
    return f"^(?:{pattern})$"


def _finite(value: float | None, what: str, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
        raise ContractError(f"{where}: {what} must be a finite number, not {value!r}")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """What one column must hold.

    `dtype` is one of integer, number, boolean, string, category, datetime.
    `minimum`/`maximum` bound numbers (inclusive); `categories` lists the allowed
    values; `min_length`/`max_length` bound a string's length in characters;
    `pattern` is a regular expression the whole value must match; `unique` says no
    value may repeat. A missing value is allowed only when `nullable`.
    """

    name: str
    dtype: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Scalar, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    unique: bool = False

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not self.name:
            raise ContractError("a column needs a name")
        if self.dtype not in DTYPES:
            raise ContractError(f"{where}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if (self.minimum is not None or self.maximum is not None) and self.dtype not in _NUMERIC:
            raise ContractError(f"{where}: min/max bound numbers; the column is {self.dtype}")
        _finite(self.minimum, "min", where)
        _finite(self.maximum, "max", where)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ContractError(f"{where}: min {self.minimum} is above max {self.maximum}")
        if (
            self.min_length is not None or self.max_length is not None or self.pattern
        ) and self.dtype not in _TEXT:
            raise ContractError(f"{where}: lengths and patterns are for text; the column is {self.dtype}")
        for what, length in (("min_length", self.min_length), ("max_length", self.max_length)):
            if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
                raise ContractError(f"{where}: {what} must be a whole number >= 0, not {length!r}")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ContractError(
                f"{where}: min_length {self.min_length} is above max_length {self.max_length}"
            )
        if self.pattern is not None:
            check_pattern(self.pattern, where=where)
        if self.categories is not None:
            if not self.categories:
                raise ContractError(f"{where}: an empty category list would refuse every value")
            if self.dtype in ("datetime", "boolean"):
                raise ContractError(f"{where}: categories are not for a {self.dtype} column")
            if len(set(self.categories)) != len(self.categories):
                raise ContractError(f"{where}: a category is listed twice")
        elif self.dtype == "category":
            raise ContractError(f"{where}: a category column needs its categories")
        if self.unique and self.dtype not in ("integer", "string", "datetime"):
            raise ContractError(f"{where}: unique is for integer, string or datetime columns")

    @property
    def numeric(self) -> bool:
        return self.dtype in _NUMERIC

    @property
    def text(self) -> bool:
        return self.dtype in _TEXT


@dataclass(frozen=True, slots=True)
class Contract:
    """What a batch of data must look like: its columns, and table-level limits.

    `label` names the label column; `labels` is the allowed label set (as text:
    ``"0"``, ``"cat"``); `class_balance` the expected fraction of each label, and
    `balance_tolerance` the largest total-variation distance from it a batch may
    show. `extra_columns` allows columns the contract does not list.
    `max_duplicate_fraction` bounds exact duplicate rows; `max_string_bytes` caps
    any text cell in UTF-8 bytes. Construct one with `profile`, `Contract.load`,
    or directly; an invalid one raises `ContractError`.
    """

    columns: tuple[ColumnSpec, ...]
    label: str | None = None
    extra_columns: bool = False
    min_rows: int | None = None
    max_rows: int | None = None
    labels: tuple[str, ...] | None = None
    class_balance: tuple[tuple[str, float], ...] | None = None
    balance_tolerance: float = 0.1
    max_duplicate_fraction: float = 0.0
    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES

    def __post_init__(self) -> None:
        if not self.columns:
            raise ContractError("a contract needs at least one column")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ContractError(f"column {twice[0]!r} is listed twice")
        if self.label is not None and self.label not in names:
            raise ContractError(f"label column {self.label!r} is not among the columns")
        if (self.labels is not None or self.class_balance is not None) and self.label is None:
            raise ContractError("a label set or class balance needs a label column")
        for what, bound in (("min rows", self.min_rows), ("max rows", self.max_rows)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
                raise ContractError(f"{what} must be a whole number >= 0, not {bound!r}")
        if self.min_rows is not None and self.max_rows is not None and self.min_rows > self.max_rows:
            raise ContractError(f"min rows {self.min_rows} is above max rows {self.max_rows}")
        if self.labels is not None:
            if not self.labels:
                raise ContractError("an empty label set would refuse every row")
            if len(set(self.labels)) != len(self.labels):
                raise ContractError("a label is listed twice in the label set")
        if self.class_balance is not None:
            self._check_balance()
        if not 0.0 < self.balance_tolerance <= 1.0:
            raise ContractError(f"balance tolerance must be in (0, 1], not {self.balance_tolerance}")
        if not 0.0 <= self.max_duplicate_fraction <= 1.0:
            raise ContractError(
                f"max duplicate fraction must be in [0, 1], not {self.max_duplicate_fraction}"
            )
        if isinstance(self.max_string_bytes, bool) or self.max_string_bytes < 1:
            raise ContractError(f"max string bytes must be at least 1, not {self.max_string_bytes}")

    def _check_balance(self) -> None:
        balance = self.class_balance or ()
        keys = [k for k, _ in balance]
        if len(set(keys)) != len(keys):
            raise ContractError("a label is listed twice in the class balance")
        if self.labels is not None and set(keys) - set(self.labels):
            raise ContractError(
                f"class balance names labels outside the label set: {sorted(set(keys) - set(self.labels))}"
            )
        fractions = [f for _, f in balance]
        if any(not 0.0 <= f <= 1.0 for f in fractions) or abs(sum(fractions) - 1.0) > 0.01:
            raise ContractError("class balance fractions must lie in [0, 1] and add up to 1")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def balance(self) -> Mapping[str, float]:
        return dict(self.class_balance or ())

    @classmethod
    def load(cls, path: Path | str) -> Contract:
        """Read a contract YAML file; a bad file raises `ContractError` naming the file and the line."""
        from pipewarden.data._contract_yaml import load_contract

        return load_contract(Path(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<contract>") -> Contract:
        """Read a contract from YAML text; errors name `source` and the line."""
        from pipewarden.data._contract_yaml import parse_contract

        return parse_contract(text, source=source)

    def to_yaml(self, *, note: str | None = None) -> str:
        """The contract as commented YAML that `from_yaml` reads back to an equal contract."""
        from pipewarden.data._contract_yaml import dump_contract

        return dump_contract(self, note=note)

    def row_violations(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """For each row of `frame`, the reasons it breaks the contract (empty: the row is fine).

        Only per-row rules apply (types, missing values, ranges, categories,
        lengths, patterns, the label set, and the always-on content checks);
        uniqueness and duplicates are properties of a whole batch: see `check`.
        """
        from pipewarden.data._rows import row_reasons

        return row_reasons(frame, self)
