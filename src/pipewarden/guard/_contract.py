"""The data contract, compiled for one row at a time.

At fit time the numeric column specs of a `pipewarden.data.Contract` (minimum,
maximum, integer, boolean, numeric categories) become a few numpy arrays in the
guard's feature order; checking a row is then a handful of vectorised
comparisons. NaN and infinity are a violation in every column, whatever the
contract says: no model score means anything for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from pipewarden.errors import GuardError

__all__ = ["CompiledContract", "ContractLike"]

_NUMERIC = ("integer", "number", "boolean", "category")
_BIG = float(np.finfo(np.float64).max)


class ColumnSpecLike(Protocol):
    """The fields of `pipewarden.data.ColumnSpec` the guard reads."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def nullable(self) -> bool: ...
    @property
    def minimum(self) -> float | None: ...
    @property
    def maximum(self) -> float | None: ...
    @property
    def categories(self) -> tuple[Any, ...] | None: ...


class ContractLike(Protocol):
    """The fields of `pipewarden.data.Contract` the guard reads."""

    @property
    def columns(self) -> tuple[ColumnSpecLike, ...]: ...
    @property
    def label(self) -> str | None: ...


class CompiledContract:
    """Per-feature bounds as arrays; `violations(x)` is a boolean matrix, `describe` explains one row."""

    def __init__(self, features: Sequence[str], contract: ContractLike | None) -> None:
        d = len(features)
        self.features = tuple(features)
        # Open limits are the largest finite floats, not infinities: then NaN (which compares False) and
        # +-inf (beyond any finite float) both fail `low <= x <= high`, in two comparisons.
        self.low = np.full(d, -_BIG)
        self.high = np.full(d, _BIG)
        self.integer = np.zeros(d, dtype=bool)
        self.categories: dict[int, np.ndarray[Any, Any]] = {}
        if contract is None:
            self.any_integer = False
            return
        specs = {spec.name: spec for spec in contract.columns}
        wanted = set(features)
        extra = sorted(name for name in specs if name not in wanted and name != contract.label)
        if extra:
            raise GuardError(
                f"contract columns {', '.join(map(repr, extra))}: not among the reference's features "
                f"({_names(features)}); the guard checks exactly the features the model reads"
            )
        for j, name in enumerate(features):
            spec = specs.get(name)
            if spec is None:
                raise GuardError(f"feature {name!r}: the contract has no column of that name")
            self._compile(j, spec)
        self.any_integer = bool(self.integer.any())

    def _compile(self, j: int, spec: ColumnSpecLike) -> None:
        if spec.dtype not in _NUMERIC:
            raise GuardError(
                f"contract column {spec.name!r} is {spec.dtype}: the guard checks numeric features only"
            )
        if spec.dtype == "category":
            values = spec.categories or ()
            try:
                allowed = np.array([float(v) for v in values], dtype=np.float64)
            except (TypeError, ValueError):
                raise GuardError(
                    f"contract column {spec.name!r}: categories {tuple(values)!r:.80} are not numbers; "
                    "the guard checks numeric features only"
                ) from None
            if allowed.size == 0:
                raise GuardError(f"contract column {spec.name!r}: a category column with no categories")
            self.categories[j] = np.sort(allowed)
            self.low[j], self.high[j] = float(allowed.min()), float(allowed.max())
            return
        if spec.dtype == "boolean":
            self.low[j], self.high[j] = 0.0, 1.0
            self.integer[j] = True
            return
        if spec.minimum is not None:
            self.low[j] = max(float(spec.minimum), -_BIG)
        if spec.maximum is not None:
            self.high[j] = min(float(spec.maximum), _BIG)
        if self.low[j] > self.high[j]:
            raise GuardError(f"contract column {spec.name!r}: minimum {spec.minimum} is above maximum")
        self.integer[j] = spec.dtype == "integer"

    def violations(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """A boolean vector, one per row of `x` (shape (m, d)): True where the row breaks the contract."""
        ok = x >= self.low
        ok &= x <= self.high
        if self.any_integer:
            ok &= ~self.integer | (x == np.floor(x))
        for j, allowed in self.categories.items():
            ok[:, j] &= np.isin(x[:, j], allowed)
        return np.asarray(~ok.all(axis=1))

    def describe(self, row: np.ndarray[Any, Any], *, limit: int = 5) -> str:
        """Why one row (shape (d,)) breaks the contract, column by column (at most `limit` named)."""
        reasons: list[str] = []
        for j, value in enumerate(row.tolist()):
            name = self.features[j]
            if math.isnan(value):
                reasons.append(f"{name} is missing (NaN)")
            elif math.isinf(value):
                reasons.append(f"{name} is infinite")
            elif value < self.low[j]:
                reasons.append(f"{name} = {value:g} is below the minimum {self.low[j]:g}")
            elif value > self.high[j]:
                reasons.append(f"{name} = {value:g} is above the maximum {self.high[j]:g}")
            elif self.integer[j] and value != math.floor(value):
                reasons.append(f"{name} = {value:g} is not an integer")
            elif j in self.categories and value not in self.categories[j]:
                reasons.append(f"{name} = {value:g} is not one of the contract's categories")
        more = len(reasons) - limit
        text = "; ".join(reasons[:limit]) + (f"; and {more} more" if more > 0 else "")
        return "contract violation: " + (text or "breaks the data contract")


def _names(features: Sequence[str]) -> str:
    if len(features) <= 4:
        return ", ".join(features)
    return f"{features[0]}..{features[-1]}, {len(features)} columns"
