"""wrap() refuses, flags or passes rows by policy; every check is exactly one event."""

from __future__ import annotations

import numpy as np
import pytest

from pipewarden.errors import ConfigError, GuardError
from pipewarden.events import Acting, Actor, Events, LocalOperator
from pipewarden.guard import (
    Action,
    GuardedPrediction,
    GuardPolicy,
    InferenceGuard,
    Refusal,
    RowsRefused,
    Verdict,
)
from tests.eventlog import MemoryLog
from tests.guard.conftest import Array, Softmax, sample


def _batch() -> Array:
    """Four rows: clean, NaN (contract), far (out of distribution), clean."""
    rows = sample(4, seed=21)[0]
    rows[1, 0] = np.nan
    rows[2] += 25.0
    return rows


def test_default_policy_raises_on_a_refused_row_and_never_calls_the_model(
    guard: InferenceGuard, model: Softmax
) -> None:
    calls: list[int] = []

    def predict(x: Array) -> Array:
        calls.append(len(x))
        return model.predict(x)

    wrapped = guard.wrap(predict)
    with pytest.raises(
        RowsRefused, match=r"refused 1 of 4 rows \(row 1: contract violation: f0 is missing"
    ) as info:
        wrapped(_batch())
    assert info.value.result.refused == (1,)
    assert isinstance(info.value, GuardError)
    assert calls == []
    clean = sample(3, seed=22)[0]
    assert list(wrapped(clean)) == list(model.predict(clean))


def test_return_mode_predicts_the_rows_not_refused(guard: InferenceGuard, model: Softmax) -> None:
    policy = GuardPolicy.of({"out_of_distribution": "refuse"}, refusal="return")
    out = guard.wrap(model.predict, policy=policy)(_batch())
    assert isinstance(out, GuardedPrediction)
    assert out.refused == (1, 2)
    assert out.rows == (0, 3)
    assert len(out.predictions) == 2
    assert out.result.verdict(2) in (Verdict.OUT_OF_DISTRIBUTION, Verdict.SUSPECTED_ADVERSARIAL)


def test_flag_and_pass_let_rows_through(guard: InferenceGuard, model: Softmax) -> None:
    flag_all = GuardPolicy(
        contract_violation=Action.FLAG,
        out_of_distribution=Action.FLAG,
        suspected_adversarial=Action.FLAG,
        refusal=Refusal.RETURN,
    )
    batch = _batch()
    batch[1] = sample(1, seed=24)[0][0]  # a model cannot take NaN: here row 1 is clean
    out = guard.wrap(model.predict, policy=flag_all)(batch)
    assert out.rows == (0, 1, 2, 3) and out.refused == ()
    assert out.result.flagged == (2,)
    passing = GuardPolicy.of({"out_of_distribution": Action.PASS})
    assert guard.check_with(batch, caller=None, policy=passing).flagged == ()


def test_a_policy_that_passes_everything_is_refused() -> None:
    with pytest.raises(ConfigError, match="every verdict passes"):
        GuardPolicy.of({v: "pass" for v in Verdict if v is not Verdict.VALID})
    with pytest.raises(ConfigError, match="'allow' is not one of refuse, flag, pass"):
        GuardPolicy.of({"out_of_distribution": "allow"})
    with pytest.raises(ConfigError, match="'ood' is not a verdict"):
        GuardPolicy.of({"ood": "refuse"})


def _acting(log: MemoryLog) -> Acting:
    return Acting(actor=Actor(name="scorer", kind="service"), events=Events(log), authorizer=LocalOperator())


def test_every_check_is_one_event_with_the_outcome(reference: tuple[Array, Array]) -> None:
    log = MemoryLog()
    x, y = reference
    guard = InferenceGuard(acting=_acting(log), resource="model:fraud/scorer").fit(x, labels=y)
    guard.check(sample(5, seed=23)[0], caller="client-7")
    guard.check(_batch(), caller="client-7")
    with pytest.raises(RowsRefused):
        guard.wrap(lambda rows: rows)(_batch())
    assert [(e.action, e.resource, e.outcome) for e in log.events] == [
        ("model.predict", "model:fraud/scorer", "allowed"),
        ("model.predict", "model:fraud/scorer", "denied"),
        ("model.predict", "model:fraud/scorer", "denied"),
    ]
    clean, broken, _ = log.events
    assert clean.attributes["rows"] == 5 and clean.attributes["valid"] == 5
    assert broken.attributes["contract_violation"] == 1 and broken.attributes["refused"] == 1
    assert broken.attributes["caller"] == "client-7"
    assert broken.attributes["extraction"] == "valid"
    assert isinstance(broken.attributes["max_score"], float)
    assert not any(key.startswith("f") and key[1:].isdigit() for key in broken.attributes)  # no row data


def test_without_acting_there_are_no_events_and_acting_needs_a_resource(
    reference: tuple[Array, Array],
) -> None:
    with pytest.raises(ConfigError, match="model:<project>/<name>"):
        InferenceGuard(acting=_acting(MemoryLog()))
    with pytest.raises(ConfigError, match="'artifact:x': a guarded model is named"):
        InferenceGuard(resource="artifact:x")


def test_refusal_is_read_case_insensitively_and_a_bad_one_is_named() -> None:
    assert GuardPolicy.of({}, refusal="Return").refusal is Refusal.RETURN
    assert GuardPolicy.of({}, refusal=" RAISE ").refusal is Refusal.RAISE
    assert GuardPolicy(refusal="Return").refusal is Refusal.RETURN  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"guard policy: refusal 'drop' is not one of raise, return"):
        GuardPolicy.of({}, refusal="drop")


def test_an_event_without_a_caller_says_extraction_was_not_checked(reference: tuple[Array, Array]) -> None:
    log = MemoryLog()
    x, y = reference
    guard = InferenceGuard(acting=_acting(log), resource="model:fraud/scorer").fit(x, labels=y)
    guard.check(sample(5, seed=25)[0])
    guard.check(sample(5, seed=26)[0], caller="client-8")
    assert [e.attributes["extraction"] for e in log.events] == ["not checked", "valid"]
    assert "extraction_queries" not in log.events[0].attributes
    assert log.events[1].attributes["extraction_queries"] == 5
