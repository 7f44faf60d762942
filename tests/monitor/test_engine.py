"""The engine's clock, windows and sequences: what a hostile or odd event stream must not break."""

from __future__ import annotations

from datetime import timedelta

from pipewarden.monitor import Engine, builtin_rules, load_rules
from tests.monitor.helpers import ev, failed_login

SEC = timedelta(seconds=1)


def test_an_event_dated_far_in_the_future_does_not_expire_every_window() -> None:
    engine = Engine(builtin_rules())
    fired = []
    for i in range(10):
        fired += engine.observe(failed_login("ada", at=i * SEC))
        if i == 4:
            engine.observe(ev("artifact.read", at=timedelta(days=365 * 70)))  # dated 2096
            engine.sweep()
    assert "PW-MON-101" in [d.rule.id for d in fired]


def test_a_temporal_sequence_starts_again_at_a_new_first_step() -> None:
    (rule,) = load_rules(
        """
rules:
  - id: THREE
    title: three steps in order
    severity: low
    selection: {outcome: allowed}
    correlation:
      type: temporal
      group_by: [actor]
      timespan: 1h
      steps:
        - {name: a, selection: {action: step.one}}
        - {name: b, selection: {action: step.two}}
        - {name: c, selection: {action: step.three}}
"""
    )
    engine = Engine([rule])
    seen = []
    for n, action in enumerate(["step.one", "step.two", "step.one", "step.three"]):
        seen += engine.observe(ev(action, at=n * SEC))
    assert seen == []  # the second step.one restarted the sequence: b never came after it
    seen += engine.observe(ev("step.two", at=10 * SEC))
    seen += engine.observe(ev("step.three", at=11 * SEC))
    assert [d.rule.id for d in seen] == ["THREE"]


def test_a_plain_rule_groups_by_actor_and_resource() -> None:
    engine = Engine(builtin_rules())
    (one,) = engine.observe(ev("role.grant", actor="eve", resource="role:admin"))
    (two,) = engine.observe(ev("role.grant", actor="bob", resource="role:admin"))
    assert dict(one.group) == {"actor": "eve", "resource": "role:admin"} and one.group != two.group


def test_value_count_with_many_events_per_group_stays_linear() -> None:
    (rule,) = load_rules(
        "rules:\n  - id: MANY\n    title: t\n    severity: low\n    selection: {action: artifact.read}\n"
        "    correlation: {type: value_count, field: resource, group_by: [actor], timespan: 1h, count: 50}\n"
    )
    engine = Engine([rule])
    fired = [
        d
        for i in range(20_000)
        for d in engine.observe(ev("artifact.read", resource=f"artifact:{i % 40}", at=i * 0.1 * SEC))
    ]
    assert fired == []  # 40 distinct values never reach 50, however many events
    (window,) = engine._windows["MANY"].values()
    assert len(window.counts) == 40
