"""Rule files: what loads, how fields match, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.monitor import Engine, builtin_rules, load_rules, merge_rules
from tests.monitor.helpers import ev

RULE = """\
rules:
  - id: OURS-1
    title: a read of the production model by a service
    severity: medium
    techniques: [AML.T0035]
    selection:
      action: artifact.read
      resource|startswith: artifact:prod/
      actor_kind: service
      attributes.size|gte: 1000
    filter:
      actor|re: '^ci-'
"""


def test_builtin_rules_load_with_ids_severities_and_techniques() -> None:
    rules = builtin_rules()
    assert len(rules) == 18
    assert all(rule.techniques and rule.title and rule.description and rule.tuning for rule in rules)
    assert next(r for r in rules if r.id == "PW-MON-116").severity.label == "critical"


def test_modifiers_and_filters_match_as_documented() -> None:
    (rule,) = load_rules(RULE)
    hit = ev("artifact.read", actor="trainer", kind="service", resource="artifact:prod/churn", size=5000)
    assert rule.selects(hit)
    assert not rule.selects(
        ev("artifact.read", actor="ci-runner", kind="service", resource="artifact:prod/churn", size=5000)
    )
    assert not rule.selects(
        ev("artifact.read", actor="trainer", kind="service", resource="artifact:dev/churn", size=5000)
    )
    assert not rule.selects(
        ev("artifact.read", actor="trainer", kind="service", resource="artifact:prod/churn", size=10)
    )
    assert not rule.selects(
        ev("artifact.read", actor="trainer", kind="service", resource="artifact:prod/churn")
    )
    assert [d.rule.id for d in Engine([rule]).observe(hit)] == ["OURS-1"]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (RULE.replace("severity: medium", "severity: urgent"), 4, "severity 'urgent'"),
        (RULE.replace("    techniques", "    colour: red\n    techniques"), 5, "unknown rule key 'colour'"),
        (RULE.replace("resource|startswith", "resource|beginswith"), 8, "unknown modifier |beginswith"),
        (RULE.replace("attributes.size|gte: 1000", "attributes.size|gte: lots"), 10, "takes a number"),
        (RULE.replace("actor|re: '^ci-'", "actor|re: '(ci'"), 12, "bad regular expression"),
        (RULE.replace("actor_kind: service", "kind: service"), 9, "'kind' is not an event field"),
        (RULE + "    correlation: {type: event_count, timespan: 10 minutes, count: 3}\n", 13, "duration"),
        (RULE + "    correlation: {type: event_count, timespan: 10m, count: 0}\n", 13, "count must be"),
        (RULE + "    correlation: {type: sometimes, timespan: 10m}\n", 13, "correlation type 'sometimes'"),
        (
            RULE
            + "    baseline: {check: new_origin}\n"
            + "    correlation: {type: event_count, timespan: 1m, count: 2}\n",
            2,
            "not both",
        ),
        (RULE.replace("    title: a read", "    title: a read\n    title: twice"), 4, "'title' given twice"),
        (
            "rules:\n  - id: A\n    title: t\n    severity: low\n    selection: {action: [a.b\n",
            6,
            "not valid YAML",
        ),
    ],
)
def test_a_bad_rule_file_names_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "ours.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert f"line {line}" in message, message
    assert problem in message, message


def test_rule_file_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such rule file"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="empty rule file"):
        load_rules("", source="empty.yaml")
    with pytest.raises(ConfigError, match="a list under 'rules'"):
        load_rules("rule: {}", source="x.yaml")
    with pytest.raises(ConfigError, match=r"x\.yaml.*not a plain YAML rule file"):
        load_rules("rules: &a [*a]", source="x.yaml")
    with pytest.raises(ConfigError, match=r"x\.yaml, line 2: not a plain YAML rule file"):
        load_rules("rules:\n  - !!python/name:os.system ''\n", source="x.yaml")


def test_a_rule_id_given_twice_names_both_places() -> None:
    mine = load_rules(RULE.replace("OURS-1", "PW-MON-101"), source="ours.yaml")
    with pytest.raises(
        ConfigError, match=r"ours.yaml:2: rule id PW-MON-101 is also at builtin_rules.yaml:\d+"
    ):
        merge_rules(builtin_rules(), mine)


def test_value_count_and_temporal_rules_from_a_file() -> None:
    text = """\
rules:
  - id: MANY-MODELS
    title: one service reads many models
    severity: high
    selection: {action: artifact.read, actor_kind: service}
    correlation: {type: value_count, field: resource, group_by: [actor], timespan: 1h, count: 3}
  - id: GRANT-THEN-READ
    title: a role granted, then the grantee reads at once
    severity: high
    selection: {outcome: allowed}
    correlation:
      type: temporal
      group_by: [actor]
      timespan: 10m
      steps:
        - {name: granted, selection: {action: role.grant}}
        - {name: read, selection: {action: artifact.read}}
"""
    engine = Engine(load_rules(text))
    fired = []
    for i, name in enumerate(["a", "b", "a", "c"]):
        fired += engine.observe(
            ev(
                "artifact.read",
                actor="svc",
                kind="service",
                resource=f"artifact:{name}",
                at=i * 60 * __import__("datetime").timedelta(seconds=1),
            )
        )
    assert [d.rule.id for d in fired] == ["MANY-MODELS"]
    assert fired[0].facts["distinct"] == 3
    sequence = engine.observe(ev("role.grant", actor="eve", resource="role:reader"))
    sequence += engine.observe(
        ev("artifact.read", actor="eve", at=__import__("datetime").timedelta(minutes=2))
    )
    assert [d.rule.id for d in sequence] == ["GRANT-THEN-READ"]
