"""The contract file: commented YAML that people read, edit and review.

Errors name the file and the line (from the YAML node marks); an unknown key is
refused rather than ignored, so a typo (``nulable: true``) cannot silently
weaken a contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pipewarden.data._contract import ColumnSpec, Contract, Scalar
from pipewarden.errors import ContractError

__all__ = ["dump_contract", "load_contract", "parse_contract"]

VERSION = 1
_MAX_BYTES = 4 << 20  # a contract is a few KiB; a bigger file is not one
_TABLE_KEYS = (
    "label",
    "extra_columns",
    "min_rows",
    "max_rows",
    "labels",
    "class_balance",
    "balance_tolerance",
    "max_duplicate_fraction",
    "max_string_bytes",
)
_COLUMN_KEYS = (
    "dtype",
    "nullable",
    "min",
    "max",
    "categories",
    "min_length",
    "max_length",
    "pattern",
    "unique",
)

_HEADER = """\
# pipewarden data contract
#
# What a batch of data must look like. `pipewarden data check DATA --contract FILE`
# rejects every row that breaks it (--quarantine writes them out with the reasons)
# and reports table-level problems (missing or new columns, label shift, duplicates).
# Review changes to this file like code: loosening it lets more data through.
#
# table:   label column, allowed labels and their expected balance (balance_tolerance is the
#          largest total-variation distance allowed), row-count bounds, duplicate-row limit,
#          largest text cell in bytes, and whether columns not listed here are allowed.
# columns: per column, dtype (integer, number, boolean, string, category, datetime),
#          nullable, min/max (inclusive), categories, min_length/max_length (characters),
#          pattern (a regular expression the whole value must match), unique.
"""


def _scalar(value: Any) -> str:
    """One value in YAML flow form (quoted when YAML would read it as something else)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 20)
    return text.removesuffix("\n").removesuffix("\n...")


def dump_contract(contract: Contract, *, note: str | None = None) -> str:
    lines = [_HEADER.rstrip("\n")]
    if note:
        lines.extend(f"# {line}".rstrip() for line in note.splitlines())
    lines += [f"version: {VERSION}", "table:"]
    table: list[tuple[str, Any]] = [
        ("label", contract.label),
        ("extra_columns", contract.extra_columns),
        ("min_rows", contract.min_rows),
        ("max_rows", contract.max_rows),
        ("labels", list(contract.labels) if contract.labels is not None else None),
        ("class_balance", dict(contract.class_balance) if contract.class_balance is not None else None),
        ("balance_tolerance", contract.balance_tolerance),
        ("max_duplicate_fraction", contract.max_duplicate_fraction),
        ("max_string_bytes", contract.max_string_bytes),
    ]
    lines += [f"  {key}: {_scalar(value)}" for key, value in table]
    lines.append("columns:")
    for spec in contract.columns:
        lines.append(f"  {_scalar(spec.name)}:")
        fields: list[tuple[str, Any]] = [
            ("dtype", spec.dtype),
            ("nullable", spec.nullable),
            ("min", spec.minimum),
            ("max", spec.maximum),
            ("categories", list(spec.categories) if spec.categories is not None else None),
            ("min_length", spec.min_length),
            ("max_length", spec.max_length),
            ("pattern", spec.pattern),
            ("unique", spec.unique or None),
        ]
        lines += [f"    {key}: {_scalar(value)}" for key, value in fields if value is not None]
    return "\n".join(lines) + "\n"


def load_contract(path: Path) -> Contract:
    source = str(path)
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ContractError(f"{source}: {path.stat().st_size} bytes is too big for a contract")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContractError(f"{source}: no such contract file") from exc
    except UnicodeDecodeError as exc:
        raise ContractError(f"{source}: not UTF-8 text") from exc
    except OSError as exc:
        raise ContractError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    return parse_contract(text, source=source)


class _Reader:
    """Walks the composed YAML nodes, so every error can name its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str) -> ContractError:
        return ContractError(f"{self.source}: line {node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise self.error(key_node, f"{what}: a key must be a name, not {key!r}")
            key = str(key)
            if allowed is not None and key not in allowed:
                raise self.error(
                    key_node, f"{what}: unknown key {key!r} (expected one of {', '.join(allowed)})"
                )
            if key in out:
                raise self.error(key_node, f"{what}: key {key!r} appears twice")
            out[key] = (key_node, value_node)
        return out

    def value(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.constructor.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            return {str(self.value(k)): self.value(v) for k, v in node.value}
        raise self.error(node, "unexpected YAML node")

    def typed(self, node: yaml.Node, what: str, check: Callable[[Any], bool], expected: str) -> Any:
        value = self.value(node)
        if value is not None and not check(value):
            raise self.error(node, f"{what} must be {expected}, not {value!r}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool)


def _label_text(v: Scalar) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def parse_contract(text: str, *, source: str = "<contract>") -> Contract:
    """Read a contract from YAML text; every error names `source` and the line."""
    if len(text) > _MAX_BYTES:
        raise ContractError(f"{source}: too big for a contract")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError(f"{source}: {where}not valid YAML: {problem}") from exc
    if root is None:
        raise ContractError(f"{source}: empty contract file")
    r = _Reader(source)
    top = r.mapping(root, "the contract", ("version", "table", "columns"))
    if "version" in top:
        version = r.value(top["version"][1])
        if version != VERSION:
            raise r.error(
                top["version"][1], f"contract version {version!r} is not supported (expected {VERSION})"
            )
    if "columns" not in top:
        raise r.error(root, "the contract has no 'columns'")
    columns_node = top["columns"][1]
    columns = tuple(
        _column(r, name, key_node, value_node)
        for name, (key_node, value_node) in r.mapping(columns_node, "columns", None).items()
    )
    table = _table(r, top["table"][1]) if "table" in top else {}
    try:
        return Contract(columns=columns, **table)
    except ContractError as exc:
        node = top["table"][1] if "table" in top else columns_node
        raise r.error(node, str(exc)) from exc


def _column(r: _Reader, name: str, key_node: yaml.Node, node: yaml.Node) -> ColumnSpec:
    what = f"column {name!r}"
    fields = r.mapping(node, what, _COLUMN_KEYS)
    if "dtype" not in fields:
        raise r.error(key_node, f"{what} has no dtype")

    def get(key: str, check: Callable[[Any], bool], expected: str) -> Any:
        return r.typed(fields[key][1], f"{what}: {key}", check, expected) if key in fields else None

    categories = get("categories", lambda v: isinstance(v, list) and all(_is_scalar(i) for i in v), "a list")
    values = {
        "dtype": get("dtype", lambda v: isinstance(v, str), "a name"),
        "nullable": bool(get("nullable", lambda v: isinstance(v, bool), "true or false")),
        "minimum": get("min", _is_number, "a number"),
        "maximum": get("max", _is_number, "a number"),
        "categories": tuple(categories) if categories is not None else None,
        "min_length": get("min_length", _is_int, "a whole number"),
        "max_length": get("max_length", _is_int, "a whole number"),
        "pattern": get("pattern", lambda v: isinstance(v, str), "a string"),
        "unique": bool(get("unique", lambda v: isinstance(v, bool), "true or false")),
    }
    try:
        return ColumnSpec(name=name, **values)
    except ContractError as exc:
        raise r.error(key_node, str(exc)) from exc


def _table(r: _Reader, node: yaml.Node) -> dict[str, Any]:
    fields = r.mapping(node, "table", _TABLE_KEYS)
    out: dict[str, Any] = {}
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "label": (lambda v: isinstance(v, str | int) and not isinstance(v, bool), "a column name"),
        "extra_columns": (lambda v: isinstance(v, bool), "true or false"),
        "min_rows": (_is_int, "a whole number"),
        "max_rows": (_is_int, "a whole number"),
        "labels": (lambda v: isinstance(v, list) and all(_is_scalar(i) for i in v), "a list"),
        "class_balance": (
            lambda v: isinstance(v, dict) and all(_is_number(f) for f in v.values()),
            "a mapping of label to fraction",
        ),
        "balance_tolerance": (_is_number, "a number"),
        "max_duplicate_fraction": (_is_number, "a number"),
        "max_string_bytes": (_is_int, "a whole number"),
    }
    for key, (_key_node, value_node) in fields.items():
        check, expected = checks[key]
        value = r.typed(value_node, f"table: {key}", check, expected)
        if value is None:
            continue
        if key == "label":
            value = str(value)
        elif key == "labels":
            value = tuple(_label_text(v) for v in value)
        elif key == "class_balance":
            value = tuple((_label_text(k), float(f)) for k, f in value.items())
        elif key in ("balance_tolerance", "max_duplicate_fraction"):
            value = float(value)
        out[key] = value
    return out
