"""Each built-in rule fires on its attack and stays quiet on the benign pattern next to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from pipewarden.events import Event
from pipewarden.monitor import Engine, builtin_rules
from tests.monitor.helpers import ev, failed_login, login

MIN = timedelta(minutes=1)
TOKEN = {"token_id": "T1"}  # an id, not a secret: what events carry of a token
SEC = timedelta(seconds=1)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _fired(events: list[Event]) -> list[str]:
    engine = Engine(builtin_rules())
    return [d.rule.id for e in events for d in engine.observe(e)]


def _office_history(user: str = "ada", days: int = 10, origin: str = "10.0.0.1") -> Iterator[Event]:
    """A person's ordinary fortnight: logins and reads between 08:00 and 17:00 from one origin."""
    for day in range(days):
        for hour in range(8):
            yield login(user, origin=origin, at=day * DAY + hour * HOUR - 1 * HOUR)
            yield ev("artifact.read", actor=user, origin=origin, at=day * DAY + hour * HOUR, size=1_000_000)


Scenario = Callable[[], list[Event]]

ATTACKS: dict[str, tuple[Scenario, Scenario]] = {
    # rule: (attack, benign neighbour)
    "PW-MON-101": (
        lambda: [failed_login("ada", at=i * 20 * SEC) for i in range(12)],
        lambda: [failed_login("ada", at=i * 30 * MIN) for i in range(12)],  # a forgetful person, slowly
    ),
    "PW-MON-102": (
        lambda: [failed_login(f"user{i}", at=i * 10 * SEC) for i in range(10)],
        lambda: [failed_login(f"user{i % 3}", at=i * 10 * SEC, origin=f"10.0.0.{i}") for i in range(10)],
    ),
    "PW-MON-103": (
        lambda: [failed_login("ada", at=i * 30 * SEC, reason="second_factor") for i in range(6)],
        lambda: [failed_login("ada", at=i * 20 * MIN, reason="second_factor") for i in range(6)],
    ),
    "PW-MON-104": (
        lambda: [*_office_history(), login("ada", origin="203.0.113.50", at=10 * DAY + 2 * HOUR)],
        lambda: [*_office_history(), login("ada", origin="10.0.0.1", at=10 * DAY + 2 * HOUR)],
    ),
    "PW-MON-105": (
        lambda: [*_office_history(), ev("artifact.read", at=10 * DAY + 18 * HOUR, size=1)],  # 03:00 UTC
        lambda: [*_office_history(), ev("artifact.read", at=10 * DAY + 3 * HOUR, size=1)],  # noon
    ),
    "PW-MON-106": (
        lambda: [
            *_office_history(),
            *[ev("artifact.read", at=10 * DAY + i * MIN, size=50_000_000) for i in range(40)],
        ],
        lambda: [
            *_office_history(),
            *[ev("artifact.read", at=10 * DAY + i * MIN, size=1_200_000) for i in range(8)],
        ],
    ),
    "PW-MON-118": (
        lambda: [
            *_office_history(),
            *[ev("artifact.read", at=10 * DAY + i * MIN, size=1) for i in range(60)],
        ],
        lambda: [
            *_office_history(),
            *[ev("artifact.read", at=10 * DAY + i * MIN, size=1) for i in range(12)],
        ],
    ),
    "PW-MON-107": (
        lambda: [ev("role.grant", resource="role:admin", subject="mallory", subject_kind="user", scope="*")],
        lambda: [ev("role.grant", resource="role:admin", outcome="denied", subject="mallory")],
    ),
    "PW-MON-108": (
        lambda: [
            ev("token.create", resource="token:ada/T1", **TOKEN, origin="10.0.0.1"),
            ev("artifact.read", **TOKEN, origin="203.0.113.9", at=5 * MIN),
        ],
        lambda: [
            ev("token.create", resource="token:ada/T1", **TOKEN, origin="10.0.0.1"),
            ev("artifact.read", **TOKEN, origin="10.0.0.1", at=5 * MIN),
            ev("artifact.read", **TOKEN, origin="203.0.113.9", at=3 * HOUR),  # weeks later, say
        ],
    ),
    "PW-MON-109": (
        lambda: [ev("artifact.read", outcome="error", reason="integrity")],
        lambda: [ev("artifact.read", outcome="error", reason="missing")],
    ),
    "PW-MON-110": (
        lambda: [ev("scan.run", resource="scan:models/x.pkl", blocked=True, findings=2)],
        lambda: [ev("scan.run", resource="scan:models/x.pkl", blocked=False, findings=0)],
    ),
    "PW-MON-111": (
        lambda: [ev("artifact.write", outcome="denied", reason="scan")],
        lambda: [ev("artifact.write", outcome="denied", rule="no artifact.write")],
    ),
    "PW-MON-112": (
        lambda: [
            ev("data.check", resource="data:batch.csv", blocked=True, at=i * 10 * MIN) for i in range(3)
        ],
        lambda: [
            ev("data.check", resource="data:batch.csv", blocked=False, at=i * 10 * MIN) for i in range(10)
        ],
    ),
    "PW-MON-113": (
        lambda: [
            ev("model.predict", resource="model:p/m", caller="c1", flagged=3, rows=10, at=i * 10 * SEC)
            for i in range(25)
        ],
        lambda: [
            ev(
                "model.predict",
                resource="model:p/m",
                caller="c1",
                flagged=1 if i == 0 else 0,
                at=i * 10 * SEC,
            )
            for i in range(25)
        ],
    ),
    "PW-MON-114": (
        lambda: [
            ev(
                "model.predict",
                resource="model:p/m",
                caller="c1",
                outcome="denied",
                refused=2,
                at=i * 20 * SEC,
            )
            for i in range(12)
        ],
        lambda: [
            ev(
                "model.predict",
                resource="model:p/m",
                caller="c1",
                outcome="denied",
                refused=2,
                at=i * 5 * MIN,
            )
            for i in range(12)
        ],
    ),
    "PW-MON-115": (
        lambda: [ev("model.predict", resource="model:p/m", caller="c1", extraction="suspected_extraction")],
        lambda: [ev("model.predict", resource="model:p/m", caller="c1", extraction="valid")],
    ),
    "PW-MON-117": (
        lambda: [
            *[ev("artifact.read", actor="svc-train", kind="service", at=i * MIN) for i in range(250)],
            ev("role.grant", actor="svc-train", kind="service", resource="role:admin", at=300 * MIN),
        ],
        lambda: [
            *[ev("artifact.read", actor="svc-train", kind="service", at=i * MIN) for i in range(250)],
            ev("role.grant", actor="ada", resource="role:reader", at=300 * MIN),  # a person, PW-MON-107's
        ],
    ),
    "PW-MON-116": (
        lambda: [ev("audit.verify", resource="audit:log", outcome="error", reason="integrity")],
        lambda: [ev("audit.verify", resource="audit:log", records=100)],
    ),
}


def test_every_builtin_rule_has_an_attack_here() -> None:
    assert {rule.id for rule in builtin_rules()} == set(ATTACKS)


@pytest.mark.parametrize("rule_id", sorted(ATTACKS))
def test_rule_fires_on_its_attack(rule_id: str) -> None:
    attack, _ = ATTACKS[rule_id]
    assert rule_id in _fired(attack())


@pytest.mark.parametrize("rule_id", sorted(ATTACKS))
def test_rule_stays_quiet_on_the_benign_pattern(rule_id: str) -> None:
    _, benign = ATTACKS[rule_id]
    assert rule_id not in _fired(benign())


def test_a_correlation_starts_afresh_after_it_fires() -> None:
    fired = _fired([failed_login("ada", at=i * 5 * SEC) for i in range(25)])
    assert fired.count("PW-MON-101") == 2  # 10 + 10, and 5 left over


def test_windows_hold_only_their_timespan() -> None:
    engine = Engine(builtin_rules())
    for i in range(20_000):
        engine.observe(
            failed_login(f"user{i}", origin=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", at=i * 2 * SEC)
        )
    # Groups whose window has passed are dropped every few thousand events: at most that many more than
    # the windows hold, never the whole history.
    from pipewarden.monitor._engine import _SWEEP_EVERY

    assert engine.groups() < 2_000 + 2 * _SWEEP_EVERY
    engine.sweep()
    # One failed login every 2 s: the brute-force window (10 min) holds 300 accounts and the spraying
    # window (30 min) 900 origins, not 20,000.
    assert engine.groups() <= 300 + 900 + 450 + 2
