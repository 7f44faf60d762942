"""The query-pattern watch: a synthetic extraction campaign is flagged, a caller sending ordinary rows is
not, and memory stays bounded."""

from __future__ import annotations

import numpy as np

from pipewarden.guard import InferenceGuard, Verdict, WatchSettings
from tests.guard.conftest import FEATURES, Array, Softmax, sample


def _fresh(reference: tuple[Array, Array], **settings: object) -> InferenceGuard:
    x, y = reference
    return InferenceGuard(watch=WatchSettings(**settings)).fit(x, labels=y)  # type: ignore[arg-type]


def test_a_caller_sending_ordinary_rows_is_not_flagged(reference: tuple[Array, Array]) -> None:
    guard = _fresh(reference)
    rows, _ = sample(1200, seed=11)
    status = None
    for start in range(0, len(rows), 4):
        status = guard.check(rows[start : start + 4], caller="ordinary").extraction
        assert status is not None
        assert status.verdict is Verdict.VALID, status.describe()
    assert status is not None and status.queries == 1200 and status.prada_w is not None


def test_a_synthetic_extraction_campaign_is_flagged(reference: tuple[Array, Array], model: Softmax) -> None:
    # Jacobian-based dataset augmentation (Papernot et al., 2017), the campaign PRADA was built against:
    # a few seed rows, then rounds of new queries one small step along the sign of the model's gradient
    # from every query so far. Its minimum distances cluster at the step size: far from normal.
    guard = _fresh(reference)
    seeds, labels = sample(10, seed=12)
    queries, classes = seeds, labels
    status = guard.check(seeds, caller="thief").extraction
    rng = np.random.default_rng(13)
    while len(queries) < 600:
        target = rng.integers(0, 3, size=len(queries))
        step = 0.1 * np.sign((model.predict_proba(queries) - np.eye(3)[target]) @ model.weights.T)
        new = queries - step
        for start in range(0, len(new), 8):
            status = guard.check(new[start : start + 8], caller="thief").extraction
        queries, classes = np.vstack([queries, new]), np.r_[classes, target]
    assert status is not None
    assert status.verdict is Verdict.SUSPECTED_EXTRACTION
    assert "prada" in status.signals
    assert status.prada_w is not None and status.prada_w < status.prada_threshold


def test_the_campaign_is_in_the_report_and_the_flag_stays_until_forgotten(
    reference: tuple[Array, Array],
) -> None:
    guard = _fresh(reference, min_queries=20, test_every=1)
    same = sample(1, seed=14)[0]
    for _ in range(30):  # one row, over and over: every distance is zero
        result = guard.check(same, caller="loop")
    assert result.extraction is not None and result.extraction.suspected
    assert [f.rule_id for f in result.report().findings] == ["PW-GUARD-201"]
    assert result.flagged == (0,)  # the default policy flags a suspected caller's rows
    later = guard.check(sample(1, seed=15)[0], caller="loop")
    assert later.extraction is not None and later.extraction.suspected
    assert guard.forget("loop")
    assert not guard.forget("loop")


def test_rate_and_coverage_signals(reference: tuple[Array, Array]) -> None:
    now = [0.0]
    guard = _fresh(reference, max_rate=2.0, window=10, clock=lambda: now[0])
    rows, _ = sample(40, seed=16)
    status = guard.check(rows[:10], caller="slow").extraction
    assert status is not None and status.rate == 1.0 and not status.suspected
    status = guard.check(rows[10:40], caller="slow").extraction
    assert status is not None and status.signals == ("rate",)
    # Queries far outside the reference land in cells no clean row reaches.
    sweep = np.random.default_rng(17).uniform(-40, 40, size=(200, FEATURES))
    status = guard.check(sweep, caller="sweeper").extraction
    assert status is not None and "coverage" in status.signals
    assert status.off_manifold > 0.5 and status.coverage > 0


def test_callers_are_forgotten_least_recently_seen_first(reference: tuple[Array, Array]) -> None:
    guard = _fresh(reference, max_callers=3)
    row = sample(1, seed=18)[0]
    for caller in ("a", "b", "c", "a", "d"):
        guard.check(row, caller=caller)
    assert not guard.forget("b")  # evicted when "d" arrived: "a" had been seen again since
    assert guard.forget("a") and guard.forget("c") and guard.forget("d")
