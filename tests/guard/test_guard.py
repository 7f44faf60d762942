"""The guard's verdicts: calibrated false positives on clean rows, contract violations, far
out-of-distribution rows, adversarial rows, and clear errors for what it cannot check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from pipewarden.data import ColumnSpec, Contract
from pipewarden.errors import GuardError
from pipewarden.guard import InferenceGuard, Verdict
from tests.guard.conftest import FEATURES, Array, Softmax, sample


def test_clean_rows_are_flagged_at_about_the_target_rate(reference: tuple[Array, Array]) -> None:
    x, y = reference
    fpr = 0.05
    guard = InferenceGuard().fit(x, labels=y, fpr=fpr)
    fresh, _ = sample(4000, seed=2)
    flagged = len(fresh) - guard.check(fresh).counts()["valid"]
    # Calibration holds out every fold in turn, so the rate may come out a little under the target, never
    # far over it: the count stays under the binomial's 99.9% quantile, and far above zero.
    assert flagged <= binom.ppf(0.999, len(fresh), fpr)
    assert flagged >= binom.ppf(0.001, len(fresh), fpr / 3)
    assert guard.calibration.fpr == fpr
    assert abs(guard.calibration.measured_fpr - fpr) < 0.01


def _contract() -> Contract:
    columns = [ColumnSpec(name=f"f{j}", dtype="number", minimum=-50.0, maximum=50.0) for j in range(FEATURES)]
    columns[0] = ColumnSpec(name="f0", dtype="integer", minimum=-50.0, maximum=50.0)
    return Contract(columns=tuple(columns))


def test_nan_inf_out_of_range_and_fractional_integers_are_contract_violations(
    reference: tuple[Array, Array],
) -> None:
    x, y = reference
    x = x.copy()
    x[:, 0] = np.round(x[:, 0])
    guard = InferenceGuard().fit(x, labels=y, contract=_contract())
    batch = np.repeat(x[:1], 6, axis=0)
    batch[1, 3] = np.nan
    batch[2, 4] = np.inf
    batch[3, 5] = -np.inf
    batch[4, 2] = 51.0
    batch[5, 0] = 0.5
    result = guard.check(batch)
    verdicts = [row.verdict for row in result.rows]
    assert verdicts == [Verdict.VALID] + [Verdict.CONTRACT_VIOLATION] * 5
    reasons = [row.reason for row in result.rows[1:]]
    assert "f3 is missing (NaN)" in reasons[0]
    assert "f4 is infinite" in reasons[1]
    assert "f5 is infinite" in reasons[2]
    assert "f2 = 51 is above the maximum 50" in reasons[3]
    assert "f0 = 0.5 is not an integer" in reasons[4]
    assert all(row.score is None for row in result.rows[1:])  # a broken row is not scored


def test_nan_and_inf_break_even_a_guard_without_a_contract(guard: InferenceGuard) -> None:
    row = sample(1, seed=3)[0]
    row[0, 0] = np.nan
    assert guard.check(row).verdict(0) is Verdict.CONTRACT_VIOLATION
    row[0, 0] = np.inf
    assert guard.check(row).verdict(0) is Verdict.CONTRACT_VIOLATION
    row[0, 0] = 1e308  # finite but absurd: no contract to refuse it, so it is far out of distribution
    assert guard.check(row).verdict(0) is Verdict.OUT_OF_DISTRIBUTION


def test_a_reference_that_breaks_the_contract_is_refused(reference: tuple[Array, Array]) -> None:
    x, y = reference
    with pytest.raises(GuardError, match=r"reference row \d+: contract violation: f0 = .* not an integer"):
        InferenceGuard().fit(x, labels=y, contract=_contract())


def test_far_rows_are_out_of_distribution(guard: InferenceGuard) -> None:
    clean, _ = sample(200, seed=4)
    far = clean + 12.0  # every feature moved by 12 standard deviations
    noise = np.random.default_rng(5).uniform(-30, 30, size=(200, FEATURES))
    for batch in (far, noise):
        result = guard.check(batch)
        assert result.counts()["valid"] == 0
        assert all(
            row.verdict in (Verdict.OUT_OF_DISTRIBUTION, Verdict.SUSPECTED_ADVERSARIAL) for row in result.rows
        )
        assert min(row.score or 0.0 for row in result.rows) > 1.0


def test_fgsm_rows_are_caught(guard: InferenceGuard, model: Softmax) -> None:
    clean, labels = sample(400, seed=6)
    right = model.predict(clean) == labels
    adv = model.fgsm(clean, labels, eps=0.3, steps=4)
    turned = right & (model.predict(adv) != labels)
    assert turned.sum() >= 100  # the attack works on this model
    result = guard.check(adv[turned])
    counts = result.counts()
    caught = counts["out_of_distribution"] + counts["suspected_adversarial"]
    assert caught >= 0.9 * turned.sum()
    # Rows over the line get the adversarial score (the share of neighbours that disagree with the model).
    assert all(row.adversarial_score is not None for row in result.rows if row.verdict is not Verdict.VALID)
    clean_counts = guard.check(clean).counts()
    assert clean_counts["suspected_adversarial"] <= 0.03 * len(clean)


def test_check_before_fit_names_the_problem() -> None:
    with pytest.raises(GuardError, match=r"check\(\) before fit\(\)"):
        InferenceGuard().check(np.zeros((1, FEATURES)))


def test_a_batch_of_the_wrong_width_is_a_clear_error(guard: InferenceGuard) -> None:
    with pytest.raises(
        GuardError, match=r"batch: 7 columns; the guard was fitted on 8 features \(f0\.\.f7\)"
    ):
        guard.check(np.zeros((2, 7)))
    with pytest.raises(GuardError, match=r"batch: 9 columns"):
        guard.check(np.zeros(9))
    frame = pd.DataFrame(np.zeros((2, FEATURES)), columns=[f"f{j}" for j in range(FEATURES)])
    with pytest.raises(GuardError, match=r"missing 'f7'; unexpected 'extra'"):
        guard.check(frame.rename(columns={"f7": "extra"}))
    with pytest.raises(GuardError, match=r"batch: a column is not numeric"):
        guard.check(frame.assign(f3=["a", "b"]))


def test_dataframes_are_read_by_column_name(reference: tuple[Array, Array]) -> None:
    x, y = reference
    names = [f"c{j}" for j in range(FEATURES)]
    frame = pd.DataFrame(x, columns=names).assign(label=y)
    guard = InferenceGuard().fit(frame, labels="label")
    assert guard.features == tuple(names)
    shuffled = pd.DataFrame(x[:50], columns=names)[names[::-1]]  # column order does not matter
    assert guard.check(shuffled).counts() == guard.check(x[:50]).counts()


def test_result_is_frozen_and_reports_one_finding_per_row_that_is_not_valid(guard: InferenceGuard) -> None:
    batch = sample(5, seed=8)[0]
    batch[1] += 15.0
    batch[3, 2] = np.nan
    result = guard.check(batch)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.caller = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.score[0] = 0.0
    report = result.report()
    assert sorted((f.location.row, f.rule_id) for f in report.findings) == [
        (1, "PW-GUARD-102") if result.verdict(1) is Verdict.OUT_OF_DISTRIBUTION else (1, "PW-GUARD-103"),
        (3, "PW-GUARD-101"),
    ]
    assert report.targets == 5
    assert all(f.evidence["verdict"] != "valid" for f in report.findings)


def test_bad_fit_arguments_are_refused(reference: tuple[Array, Array], model: Softmax) -> None:
    x, y = reference
    with pytest.raises(GuardError, match=r"fpr 0: "):
        InferenceGuard().fit(x, fpr=0)
    with pytest.raises(GuardError, match=r"reference: 50 rows, fewer than the 100 held-out rows"):
        InferenceGuard().fit(x[:50])
    with pytest.raises(GuardError, match=r"labels: 10 labels for 1500 reference rows"):
        InferenceGuard().fit(x, labels=y[:10])
    with pytest.raises(GuardError, match=r"predict_proba: 3 columns, but the labels have 4 classes"):
        InferenceGuard().fit(
            x, labels=np.where(y == 0, 3, y) if False else np.r_[y[:-1], 3], predict_proba=model.predict_proba
        )
    with pytest.raises(GuardError, match=r"reference row 2: NaN or infinite"):
        bad = x.copy()
        bad[2, 0] = np.nan
        InferenceGuard().fit(bad)


def test_contract_columns_must_be_the_features(reference: tuple[Array, Array]) -> None:
    x, _ = reference
    contract = Contract(columns=(*_contract().columns[1:], ColumnSpec(name="name", dtype="string")))
    with pytest.raises(GuardError, match=r"contract columns 'name': not among the reference's features"):
        InferenceGuard().fit(x, contract=contract)
