"""Detection rules: a declarative subset of Sigma's model, loaded from YAML.

A rule file holds a list under ``rules:``; each rule has an ``id``, a ``title``, a ``severity``, the MITRE
ATLAS / ATT&CK ids it answers (``techniques``), and one of:

- ``selection`` alone: every matching event is a detection;
- ``selection`` and a ``correlation`` within a ``timespan``, grouped by event fields:
  ``event_count`` (at least ``count`` matching events), ``value_count`` (at least ``count`` distinct
  values of ``field``), or ``temporal`` (the named ``steps`` match in that order);
- ``selection`` and a ``baseline`` test against the principal's own history: ``new_origin``,
  ``new_action``, ``unusual_hour`` or ``volume`` (see `_baseline`).

A selection maps event fields (``action``, ``actor``, ``actor_kind``, ``resource``, ``outcome``,
``origin``, ``attributes.NAME``) to a value or a list of values (any of them); a field name may carry a
modifier after ``|``: ``startswith``, ``endswith``, ``contains``, ``re`` (a regular expression searched
in the text), ``gt``, ``gte``, ``lt``, ``lte`` (numbers), ``exists`` (true or false). All fields must
match. ``filter`` is a selection that excludes. A bad rule file is a `ConfigError` naming the file, the
line and what is wrong.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pipewarden.errors import ConfigError
from pipewarden.events import Event
from pipewarden.findings import Severity

__all__ = [
    "BASELINE_CHECKS",
    "CORRELATIONS",
    "Baseline",
    "Correlation",
    "Rule",
    "Selection",
    "builtin_rules",
    "load_rules",
    "merge_rules",
    "parse_duration",
]

CORRELATIONS = ("event_count", "value_count", "temporal")
BASELINE_CHECKS = ("new_origin", "new_action", "unusual_hour", "volume")
_TOP_FIELDS = ("action", "actor", "actor_kind", "resource", "outcome", "origin")
_MODIFIERS = ("startswith", "endswith", "contains", "re", "gt", "gte", "lt", "lte", "exists")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE_KEYS = frozenset(
    {
        "id",
        "title",
        "severity",
        "description",
        "techniques",
        "selection",
        "filter",
        "correlation",
        "baseline",
        "tuning",
    }
)


def parse_duration(text: object, *, where: str) -> float:
    """Seconds in a duration such as ``30s``, ``10m``, ``1h`` or ``7d``."""
    match = _DURATION.match(str(text)) if isinstance(text, str | int) else None
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{where}: duration {text!r} is not a positive number followed by s, m, h or d")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


Test = Callable[[Any], bool]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _test(modifier: str | None, expected: Any, where: str) -> Test:
    """One comparison of an event value against `expected` (one value of a selection's list)."""
    if modifier is None:
        if isinstance(expected, Mapping | list):
            raise ConfigError(f"{where}: a value to match is a string, number, boolean or null")
        if isinstance(expected, bool) or expected is None:
            return lambda value: value is expected or value == expected
        if isinstance(expected, int | float):
            return lambda value: not isinstance(value, bool) and value == expected
        text = str(expected)
        return lambda value: isinstance(value, str) and value == text
    if modifier in ("startswith", "endswith", "contains"):
        if not isinstance(expected, str):
            raise ConfigError(f"{where}: |{modifier} takes text, not {expected!r}")
        method = {"startswith": str.startswith, "endswith": str.endswith, "contains": str.__contains__}[
            modifier
        ]
        return lambda value: isinstance(value, str) and method(value, expected)
    if modifier == "re":
        try:
            pattern = re.compile(str(expected))
        except re.error as exc:
            raise ConfigError(f"{where}: bad regular expression {expected!r}: {exc}") from None
        return lambda value: isinstance(value, str) and pattern.search(value) is not None
    if modifier in ("gt", "gte", "lt", "lte"):
        bound = _number(expected)
        if bound is None:
            raise ConfigError(f"{where}: |{modifier} takes a number, not {expected!r}")
        compare: Callable[[float, float], bool] = {
            "gt": operator.gt,
            "gte": operator.ge,
            "lt": operator.lt,
            "lte": operator.le,
        }[modifier]

        def numeric(value: Any) -> bool:
            number = _number(value)
            return number is not None and compare(number, bound)

        return numeric
    if modifier == "exists":
        if not isinstance(expected, bool):
            raise ConfigError(f"{where}: |exists takes true or false, not {expected!r}")
        return lambda value: (value is not None) is expected
    raise ConfigError(f"{where}: unknown modifier |{modifier} (choose from {', '.join(_MODIFIERS)})")


@dataclass(frozen=True)
class Selection:
    """Fields an event must all match; each field matches any of its values."""

    #: Per field: how to read it from an event, and whether the value matches (any of the values given).
    #: Plain text values are tested as one set lookup; the cheapest fields (plain top-level ones) come first.
    fields: tuple[tuple[Callable[[Event], Any], Test], ...]
    actions: frozenset[str] | None  # the exact actions it can match, when it says (an index for speed)
    source: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, event: Event) -> bool:
        for read, test in self.fields:
            if not test(read(event)):
                return False
        return True


def _reader(name: str) -> Callable[[Event], Any]:
    if name.startswith("attributes."):
        key = name[len("attributes.") :]
        return lambda event: event.attributes.get(key)
    return operator.attrgetter(name)


def _any_of(modifier: str | None, values: list[Any], where: str) -> Test:
    """One test for a field: a set lookup when every value is plain text, else any of the single tests."""
    if modifier is None and all(isinstance(v, str) for v in values):
        allowed = frozenset(values)
        return lambda value: isinstance(value, str) and value in allowed
    tests = tuple(_test(modifier, v, where) for v in values)
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _at(doc: Any, key: str, where: str) -> str:
    """`where` ("file, line N (rule X)") pointing at `key`'s own line in `doc` when it is known."""
    line = _line(doc, key)
    if not line:
        return where
    head, sep, tail = where.partition(", line ")
    rest = tail.partition(" ")[2] if sep else ""
    return f"{head}, line {line}" + (f" {rest}" if rest else "")


def _selection(doc: Any, where: str) -> Selection:
    if not isinstance(doc, Mapping) or not doc:
        raise ConfigError(f"{where}: a selection maps event fields to values")
    fields: list[tuple[int, Callable[[Event], Any], Test]] = []
    actions: frozenset[str] | None = None
    outer = where
    for key, expected in doc.items():
        where = _at(doc, key, outer)
        name, _, modifier = str(key).partition("|")
        if name not in _TOP_FIELDS and not (
            name.startswith("attributes.") and len(name) > len("attributes.")
        ):
            raise ConfigError(
                f"{where}: {name!r} is not an event field ({', '.join(_TOP_FIELDS)} or attributes.NAME)"
            )
        values = expected if isinstance(expected, list) else [expected]
        if not values:
            raise ConfigError(f"{where}: {key!r} lists no values")
        test = _any_of(modifier or None, values, f"{where}: {key}")
        cost = (0 if not modifier else 2) + (1 if name.startswith("attributes.") else 0)
        fields.append((cost, _reader(name), test))
        if name == "action" and not modifier:
            actions = frozenset(str(v) for v in values)
    fields.sort(key=lambda item: item[0])  # stable: the file's order among equals
    return Selection(
        fields=tuple((read, test) for _, read, test in fields), actions=actions, source=dict(doc)
    )


@dataclass(frozen=True)
class Correlation:
    kind: str  # one of CORRELATIONS
    timespan: float  # seconds
    group_by: tuple[str, ...]
    count: int = 0  # event_count, value_count: at least this many
    field: str = ""  # value_count: the field whose distinct values are counted
    steps: tuple[tuple[str, Selection], ...] = ()  # temporal: named selections, in order
    differ: tuple[str, ...] = ()  # temporal: fields each later step must not share with the first


@dataclass(frozen=True)
class Baseline:
    check: str  # one of BASELINE_CHECKS
    group_by: tuple[str, ...] = ("actor",)
    #: new_origin, new_action, unusual_hour: the history a principal needs before it is judged (events)
    min_history: int = 20
    #: unusual_hour: an hour of the day at most this share of the principal's events fell in is unusual
    max_share: float = 0.01
    #: volume: the attribute summed per principal and day ("" counts events), and how far above the
    #: principal's usual day (median plus `spread` robust deviations, and at least `factor` times it)
    amount: str = ""
    spread: float = 6.0
    factor: float = 3.0
    min_days: int = 5


@dataclass(frozen=True)
class Rule:
    """One detection rule, valid once loaded."""

    id: str
    title: str
    severity: Severity
    selection: Selection
    description: str = ""
    techniques: tuple[str, ...] = ()
    exclude: Selection | None = None
    correlation: Correlation | None = None
    baseline: Baseline | None = None
    tuning: str = ""
    origin: str = ""  # the file and line it came from

    def selects(self, event: Event) -> bool:
        return self.selection.matches(event) and (self.exclude is None or not self.exclude.matches(event))


# --- loading ---------------------------------------------------------------------------------------------


class _Doc(dict[str, Any]):
    """A YAML mapping that remembers its line, and each key's."""

    line: int = 0
    lines: dict[str, int]


def _plain(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        doc = _Doc()
        doc.line = node.start_mark.line + 1
        doc.lines = {}
        for key_node, value_node in node.value:
            key = _plain(key_node)
            if not isinstance(key, str):
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be text, not {key!r}")
            if key in doc:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: {key!r} given twice")
            doc[key] = _plain(value_node)
            doc.lines[key] = key_node.start_mark.line + 1
        return doc
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item) for item in node.value]
    return yaml.SafeLoader("").construct_object(node, deep=True)  # a scalar, by YAML's own rules


def _line(doc: Any, key: str | None = None) -> int:
    if isinstance(doc, _Doc):
        return doc.lines.get(key, doc.line) if key is not None else doc.line
    return 0


def _rule(doc: Any, source: str) -> Rule:
    if not isinstance(doc, _Doc):
        raise ConfigError(f"{source}: each rule is a mapping")
    where = f"{source}, line {doc.line}"
    unknown = sorted(set(doc) - _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{source}, line {_line(doc, unknown[0])}: unknown rule key {unknown[0]!r}")
    rule_id = doc.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise ConfigError(f"{where}: a rule needs an id of letters, digits, '.', '_' or '-', not {rule_id!r}")
    where = f"{source}, line {doc.line} (rule {rule_id})"
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{where}: a rule needs a title")
    try:
        severity = Severity.parse(str(doc.get("severity", "")))
    except ConfigError:
        raise ConfigError(
            f"{source}, line {_line(doc, 'severity')} (rule {rule_id}): severity {doc.get('severity')!r} "
            "is not one of info, low, medium, high, critical"
        ) from None
    techniques = doc.get("techniques", [])
    if not isinstance(techniques, list) or not all(isinstance(t, str) for t in techniques):
        raise ConfigError(
            f"{source}, line {_line(doc, 'techniques')} (rule {rule_id}): techniques is a list of ids"
        )
    if "selection" not in doc:
        raise ConfigError(f"{where}: a rule needs a selection")
    selection = _selection(doc["selection"], f"{source}, line {_line(doc, 'selection')} (rule {rule_id})")
    exclude = (
        _selection(doc["filter"], f"{source}, line {_line(doc, 'filter')} (rule {rule_id})")
        if "filter" in doc
        else None
    )
    if "correlation" in doc and "baseline" in doc:
        raise ConfigError(f"{where}: a rule has a correlation or a baseline, not both")
    correlation = (
        _correlation(doc["correlation"], f"{source}, line {_line(doc, 'correlation')} (rule {rule_id})")
        if "correlation" in doc
        else None
    )
    baseline = (
        _baseline(doc["baseline"], f"{source}, line {_line(doc, 'baseline')} (rule {rule_id})")
        if "baseline" in doc
        else None
    )
    return Rule(
        id=rule_id,
        title=title.strip(),
        severity=severity,
        selection=selection,
        description=str(doc.get("description", "")).strip(),
        techniques=tuple(techniques),
        exclude=exclude,
        correlation=correlation,
        baseline=baseline,
        tuning=str(doc.get("tuning", "")).strip(),
        origin=f"{source}:{doc.line}",
    )


def _group_by(doc: Mapping[str, Any], where: str) -> tuple[str, ...]:
    group = doc.get("group_by", [])
    if isinstance(group, str):
        group = [group]
    if not isinstance(group, list) or not all(isinstance(g, str) for g in group):
        raise ConfigError(f"{where}: group_by is a list of event fields")
    for name in group:
        if name not in _TOP_FIELDS and not name.startswith("attributes."):
            raise ConfigError(f"{where}: group_by field {name!r} is not an event field")
    return tuple(group)


def _count(doc: Mapping[str, Any], where: str) -> int:
    count = doc.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{where}: count must be a whole number of at least 1, not {count!r}")
    return count


def _correlation(doc: Any, where: str) -> Correlation:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: a correlation is a mapping")
    kind = doc.get("type")
    if kind not in CORRELATIONS:
        raise ConfigError(
            f"{_at(doc, 'type', where)}: correlation type {kind!r} is not one of {', '.join(CORRELATIONS)}"
        )
    known = {"type", "timespan", "group_by", "count", "field", "steps", "differ"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{_at(doc, unknown[0], where)}: unknown correlation key {unknown[0]!r}")
    timespan = parse_duration(doc.get("timespan"), where=f"{_at(doc, 'timespan', where)}: timespan")
    group_by = _group_by(doc, _at(doc, "group_by", where))
    if kind == "event_count":
        return Correlation(
            kind=kind, timespan=timespan, group_by=group_by, count=_count(doc, _at(doc, "count", where))
        )
    if kind == "value_count":
        name = doc.get("field")
        if not isinstance(name, str) or (name not in _TOP_FIELDS and not name.startswith("attributes.")):
            raise ConfigError(f"{where}: value_count needs the event field whose values it counts")
        return Correlation(
            kind=kind, timespan=timespan, group_by=group_by, count=_count(doc, where), field=name
        )
    steps = doc.get("steps")
    if not isinstance(steps, list) or len(steps) < 2:
        raise ConfigError(f"{where}: temporal needs at least two steps, each a name and a selection")
    parsed = []
    for number, step in enumerate(steps, 1):
        if not isinstance(step, Mapping) or set(step) != {"name", "selection"}:
            raise ConfigError(f"{where}: step {number} needs exactly a name and a selection")
        parsed.append((str(step["name"]), _selection(step["selection"], _at(step, "selection", where))))
    differ = doc.get("differ", [])
    if isinstance(differ, str):
        differ = [differ]
    if not isinstance(differ, list) or not all(
        isinstance(d, str) and (d in _TOP_FIELDS or d.startswith("attributes.")) for d in differ
    ):
        raise ConfigError(f"{where}: differ is a list of event fields")
    return Correlation(
        kind=kind, timespan=timespan, group_by=group_by, steps=tuple(parsed), differ=tuple(differ)
    )


def _baseline(doc: Any, where: str) -> Baseline:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: a baseline is a mapping")
    check = doc.get("check")
    if check not in BASELINE_CHECKS:
        raise ConfigError(f"{where}: baseline check {check!r} is not one of {', '.join(BASELINE_CHECKS)}")
    known = {"check", "group_by", "min_history", "max_share", "amount", "spread", "factor", "min_days"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown baseline key {unknown[0]!r}")
    options: dict[str, Any] = {"check": check}
    if "group_by" in doc:
        options["group_by"] = _group_by(doc, where)
    for name, kind, low in (
        ("min_history", int, 1),
        ("min_days", int, 2),
        ("max_share", float, 0.0),
        ("spread", float, 0.0),
        ("factor", float, 1.0),
    ):
        if name in doc:
            value = doc[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ConfigError(f"{where}: {name} must be a number of at least {low}, not {value!r}")
            if kind is int and not isinstance(value, int):
                raise ConfigError(f"{where}: {name} must be a whole number, not {value!r}")
            options[name] = kind(value)
    if "amount" in doc:
        amount = doc["amount"]
        if not isinstance(amount, str) or (amount and not amount.startswith("attributes.")):
            raise ConfigError(f"{where}: amount names a numeric attribute (attributes.NAME), or is empty")
        options["amount"] = amount
    return Baseline(**options)


def load_rules(text: str | bytes | Path, *, source: str | None = None) -> tuple[Rule, ...]:
    """Rules from a YAML file (a path) or text; `ConfigError` names the file, the line and the problem."""
    if isinstance(text, Path):
        source = source or str(text)
        try:
            text = text.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such rule file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read the rule file ({exc})") from None
    source = source or "rules"
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ConfigError(f"{source}: not a plain YAML rule file (nested too deep)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if node is None:
        raise ConfigError(f"{source}: empty rule file")
    try:
        doc = _plain(node)
    except ConfigError as exc:
        raise ConfigError(f"{source}, {exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        # An unknown tag (!!python/object), or an alias that refers to itself.
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not a plain YAML rule file ({type(exc).__name__})") from None
    if not isinstance(doc, _Doc) or not isinstance(doc.get("rules"), list):
        raise ConfigError(f"{source}: a rule file is a mapping with a list under 'rules'")
    rules = [_rule(item, source) for item in doc["rules"]]
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(f"{rule.origin}: rule id {rule.id} is also at {seen[rule.id].origin}")
        seen[rule.id] = rule
    return tuple(rules)


def builtin_rules() -> tuple[Rule, ...]:
    """The rules pipewarden ships (`monitor/builtin_rules.yaml`)."""
    text = resources.files("pipewarden.monitor").joinpath("builtin_rules.yaml").read_text(encoding="utf-8")
    return load_rules(text, source="builtin_rules.yaml")


def merge_rules(*sets: Sequence[Rule]) -> tuple[Rule, ...]:
    """Rule sets in order; a rule id given twice is an error naming both places."""
    seen: dict[str, Rule] = {}
    for rules in sets:
        for rule in rules:
            if rule.id in seen:
                raise ConfigError(f"{rule.origin}: rule id {rule.id} is also at {seen[rule.id].origin}")
            seen[rule.id] = rule
    return tuple(seen.values())
