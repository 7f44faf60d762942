"""The guard's verdicts: calibrated false positives on clean rows, contract violations, far
out-of-distribution rows, adversarial rows, and clear errors for what it cannot check."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

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


def test_a_few_rows_beyond_max_reference_are_not_the_calibration_set() -> None:
    # 205 rows with an index of 200 once left 5 held-out rows to calibrate on, and 31% of clean rows
    # flagged at fpr 0.01. Too few rows beyond the index: folds over a sample of max_reference rows.
    x, _ = sample(205, seed=31)
    guard = InferenceGuard().fit(x, max_reference=200)
    assert guard.calibration.rows == 200
    fresh, _ = sample(4000, seed=32)
    assert len(fresh) - guard.check(fresh).counts()["valid"] <= 0.03 * len(fresh)


def test_rows_beyond_max_reference_are_held_out_only_when_they_can_place_the_quantile() -> None:
    x, _ = sample(500, seed=33)
    # fpr 0.1 needs max(200, 20 / 0.1) = 200 held-out rows beyond an index of 300.
    assert InferenceGuard().fit(x, fpr=0.1, max_reference=300).calibration.rows == 200
    assert InferenceGuard().fit(x[:499], fpr=0.1, max_reference=300).calibration.rows == 300
    with pytest.raises(
        GuardError, match=r"reference: 400 rows \(a sample of max_reference 400 of 500\), fewer than the 1000"
    ):
        InferenceGuard().fit(x, fpr=0.001, max_reference=400)


def test_dataframes_with_integer_column_names_are_checked_by_the_same_names(
    reference: tuple[Array, Array], model: Softmax
) -> None:
    x, y = reference
    frame = pd.DataFrame(x)  # columns 0..7, integers
    frame[FEATURES] = y  # the label column, named 8
    guard = InferenceGuard().fit(frame, labels=FEATURES, predict_proba=model.predict_proba)
    assert guard.features == tuple(str(j) for j in range(FEATURES))
    assert "adversarial" in guard.calibration.thresholds  # the labels were read from column 8
    batch = pd.DataFrame(sample(50, seed=34)[0])
    expected = guard.check(batch.to_numpy()).counts()
    assert guard.check(batch).counts() == expected
    assert guard.check(batch[list(range(FEATURES))[::-1]]).counts() == expected
    assert guard.check(batch.iloc[:1]).verdict(0) is guard.check(batch.to_numpy()[:1]).verdict(0)
    with pytest.raises(GuardError, match=r"reference: no label column 99"):
        InferenceGuard().fit(frame, labels=99)


def test_duplicated_column_names_are_refused_with_the_name() -> None:
    x, _ = sample(300, seed=35)
    with pytest.raises(GuardError, match=r"reference: column 'a' appears 2 times; .* must be unique"):
        InferenceGuard().fit(pd.DataFrame(x[:, :3], columns=["a", "a", "b"]))
    with pytest.raises(GuardError, match=r"reference: column '0' appears 2 times \(as 0, '0'\)"):
        InferenceGuard().fit(pd.DataFrame(x[:, :3], columns=[0, "0", "b"]))
    guard = InferenceGuard().fit(pd.DataFrame(x[:, :3], columns=["a", "b", "c"]))
    with pytest.raises(GuardError, match=r"batch: column 'b' appears 2 times"):
        guard.check(pd.DataFrame(x[:2, :4], columns=["a", "b", "c", "b"]))


def test_labels_that_are_not_one_per_row_are_refused(reference: tuple[Array, Array]) -> None:
    x, y = reference
    with pytest.raises(GuardError, match=r"labels: one value \(2\), not one label per reference row \(1500"):
        InferenceGuard().fit(x, labels=2)
    with pytest.raises(GuardError, match=r"labels: shape \(1500, 1\); the guard needs one label per"):
        InferenceGuard().fit(x, labels=y.reshape(-1, 1))
    labelled = InferenceGuard().fit(pd.DataFrame(x), labels=pd.Series(y))  # values, not a column name
    assert len(labelled.features) == FEATURES


def test_every_neighbour_disagreeing_is_adversarial_even_when_clean_rows_often_do(
    reference: tuple[Array, Array], model: Softmax
) -> None:
    # With one neighbour, more than 1% of clean rows disagree with it (the model's error rate here is about
    # 6%), so the 99% quantile of the disagreement share is 1.0. A threshold of 1.0 that nothing can
    # exceed would never call a row adversarial.
    x, y = reference
    guard = InferenceGuard().fit(x, labels=y, predict_proba=model.predict_proba, neighbours=1)
    assert guard.calibration.thresholds["adversarial"] < 1.0
    clean, labels = sample(400, seed=6)
    adv = model.fgsm(clean, labels, eps=0.3, steps=4)
    turned = (model.predict(clean) == labels) & (model.predict(adv) != labels)
    result = guard.check(adv[turned])
    assert result.counts()["suspected_adversarial"] >= 10
    adversarial = [row for row in result.rows if row.verdict is Verdict.SUSPECTED_ADVERSARIAL]
    assert all((row.adversarial_score or 0.0) > 1.0 for row in adversarial)


def test_documentation_the_guard_cites_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    cited = set()
    for source in (root / "src" / "pipewarden" / "guard").glob("*.py"):
        cited.update(re.findall(r"docs/[\w./-]+\.md", source.read_text(encoding="utf-8")))
    assert cited  # the rule ids and the adversarial score point at the user guide
    for path in cited:
        assert (root / path).is_file(), path
    assert "## The inference guard" in (root / "docs" / "data.md").read_text(encoding="utf-8")


def test_a_check_without_a_caller_says_extraction_was_not_checked(guard: InferenceGuard) -> None:
    batch = sample(3, seed=36)[0]
    assert guard.check(batch).extraction_verdict == "not checked"
    assert guard.check(batch, caller="client-36").extraction_verdict == "valid"
