"""`InferenceGuard`: fit on clean reference data, then check every batch before the model sees it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipewarden.errors import ConfigError, GuardError
from pipewarden.guard._contract import CompiledContract, ContractLike
from pipewarden.guard._inputs import classes_of, reference_of, unique_columns
from pipewarden.guard._policy import GuardedPredictor, GuardPolicy
from pipewarden.guard._result import (
    ADVERSARIAL,
    CONTRACT,
    OOD,
    REFUSE_,
    Action,
    ExtractionStatus,
    GuardResult,
)
from pipewarden.guard._scores import Calibration, Scaling, Scorer, calibrate, held_out_rows
from pipewarden.guard._watch import ExtractionWatch, WatchSettings

if TYPE_CHECKING:
    from pipewarden.events import Acting

__all__ = ["InferenceGuard"]

Array = np.ndarray[Any, Any]
_MIN_FIT_ROWS = 10


class InferenceGuard:
    """Inference-time checks around any model: the input contract, out-of-distribution and adversarial
    scores calibrated to a false-positive rate, and a per-caller watch for model extraction.

    >>> guard = InferenceGuard(acting=acting, resource="model:fraud/scorer").fit(
    ...     reference, contract=contract, predict_proba=model.predict_proba
    ... )
    >>> guard.check(batch, caller="client-7").counts()
    >>> predict = guard.wrap(model.predict)   # refuses, flags or passes rows by policy
    """

    def __init__(
        self,
        *,
        policy: GuardPolicy | None = None,
        acting: Acting | None = None,
        resource: str | None = None,
        watch: WatchSettings | None = None,
    ) -> None:
        if resource is not None and (not resource.startswith("model:") or len(resource) <= len("model:")):
            raise ConfigError(f"{resource!r}: a guarded model is named 'model:<project>/<name>'")
        if acting is not None and resource is None:
            raise ConfigError(
                "InferenceGuard: events need the model's resource name ('model:<project>/<name>')"
            )
        self.policy = policy if policy is not None else GuardPolicy()
        self.acting = acting
        self.resource = resource
        self.watch_settings = watch if watch is not None else WatchSettings()
        self._fitted: _Fitted | None = None

    # ----------------------------------------------------------------------------------------- fitting

    def fit(
        self,
        reference: Any,
        *,
        labels: Any = None,
        contract: ContractLike | None = None,
        predict_proba: Callable[[Array], Any] | None = None,
        classes: Sequence[Any] | None = None,
        fpr: float = 0.01,
        folds: int = 5,
        neighbours: int = 5,
        max_reference: int = 20_000,
        seed: int = 0,
    ) -> InferenceGuard:
        """Learn the reference distribution from clean rows and calibrate every threshold; returns self.

        `reference` is a 2-D numpy array (features named ``f0``..``f{d-1}``) or a
        DataFrame of numeric features, named by ``str(column)`` (so ``0`` and
        ``"0"`` are the same feature, and a name used twice is refused); `check`
        matches a DataFrame's columns by the same names. `labels` are the
        reference rows' classes (one per row, or the name of a column of the
        DataFrame, which is then not a feature); with `predict_proba` (rows ->
        one probability per class, in the order of `classes`, default the sorted
        labels) the guard also scores rows as suspected adversarial. Without
        labels, the model's own classes of the reference rows are used.
        Thresholds are calibrated on held-out rows: each of `folds` parts of the
        reference is scored against an index of the others, and the thresholds
        are set so that a share `fpr` of those scores is over the line. The index
        holds at most `max_reference` rows: with more, it is a random sample of
        that many, and when at least ``max(200, 20 / fpr)`` rows lie outside the
        sample (enough to estimate the ``1 - fpr`` quantile), up to
        `max_reference` of those are the held-out rows; otherwise the folds are
        cut from the sample and the other rows are not used.
        """
        if not 0.0 < fpr <= 0.5:
            raise GuardError(f"fpr {fpr}: the target false-positive rate must be in (0, 0.5]")
        if not 2 <= folds <= 20:
            raise GuardError(f"folds {folds}: calibration holds out each of 2 to 20 folds in turn")
        if neighbours < 1 or max_reference < _MIN_FIT_ROWS:
            raise GuardError(f"neighbours {neighbours}, max_reference {max_reference}: too small")
        features, x, label_values = reference_of(reference, labels)
        n = x.shape[0]
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise GuardError(f"reference row {bad}: NaN or infinite values; fit on clean data only")
        compiled = CompiledContract(features, contract)
        broken = compiled.violations(x)
        if broken.any():
            first = int(np.flatnonzero(broken)[0])
            raise GuardError(
                f"reference row {first}: {compiled.describe(x[first])} (the reference data must satisfy "
                f"the contract; {int(broken.sum())} rows do not)"
            )
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        # Held-out rows outside the index only when there are enough of them to estimate the `1 - fpr`
        # quantile: a handful would put the threshold at their maximum's whim (205 rows with an index of 200
        # left 5 calibration rows and flagged 31% of clean rows at fpr 0.01).
        held_out = min(n - max_reference, max_reference) >= held_out_rows(fpr)
        if not held_out and n > max_reference:  # folds over a sample of max_reference rows
            keep = order[:max_reference]
            x = x[keep]
            label_values = None if label_values is None else label_values[keep]
            order = rng.permutation(max_reference)
        used = x.shape[0]
        if not held_out and (used < math.ceil(1.0 / fpr) or used < folds * _MIN_FIT_ROWS):
            sampled = f" (a sample of max_reference {max_reference} of {n})" if used < n else ""
            raise GuardError(
                f"reference: {used} rows{sampled}, fewer than the {math.ceil(1.0 / fpr)} held-out rows "
                f"needed to measure a false-positive rate of {fpr} (or than {folds * _MIN_FIT_ROWS} for "
                f"{folds} folds)"
            )
        codes, class_values = classes_of(label_values, classes, predict_proba, x)

        def scorer(rows: Array) -> Scorer:
            scaling = Scaling(x[rows])
            return Scorer(
                scaling(x[rows]),
                scaling=scaling,
                labels=None if codes is None else codes[rows],
                n_classes=len(class_values),
                neighbours=neighbours,
                predict_proba=predict_proba,
            )

        if held_out:  # the index is a sample; calibrate on rows outside it
            index, held = order[:max_reference], order[max_reference:][:max_reference]
            final = scorer(index)
            z_held, raw = final.components(x[held])
            ratio = final.ratio(x[held], z_held) if final.adversarial else None
            splits = [(np.arange(len(index)), np.arange(len(index), len(index) + len(held)))]
            watch_rows = final.scaling(np.vstack([x[index], x[held]]))
        else:  # every row is held out once, scored against an index of the others
            parts = np.array_split(order, folds)
            final = scorer(np.arange(used))
            raw = np.empty((used, 2))
            ratio = np.empty(used) if final.adversarial else None
            splits = []
            for i, part in enumerate(parts):
                rest = np.concatenate([p for j, p in enumerate(parts) if j != i])
                fold = scorer(rest)
                z_part, raw[part] = fold.components(x[part])
                if ratio is not None:
                    ratio[part] = fold.ratio(x[part], z_part)
                splits.append((rest, part))
            watch_rows = final.scaling(x)
        calib = calibrate(raw, fpr=fpr, adversarial=ratio, neighbours=final.k)
        watch = ExtractionWatch(self.watch_settings, watch_rows, splits, seed=seed)
        self._fitted = _Fitted(
            features=features,
            contract=compiled,
            scorer=final,
            calibration=calib,
            watch=watch,
            classes=tuple(class_values),
        )
        return self

    @property
    def fitted(self) -> bool:
        return self._fitted is not None

    @property
    def features(self) -> tuple[str, ...]:
        return self._state("features").features

    @property
    def calibration(self) -> Calibration:
        """The thresholds, the target false-positive rate and the rate measured on the held-out rows."""
        return self._state("calibration").calibration

    def _state(self, what: str) -> _Fitted:
        if self._fitted is None:
            raise GuardError(
                f"InferenceGuard: {what} before fit(); fit the guard on clean reference data first"
            )
        return self._fitted

    # ---------------------------------------------------------------------------------------- checking

    def check(self, batch: Any, *, caller: str | None = None) -> GuardResult:
        """A verdict per row of `batch` (a 2-D array, one row as a 1-D array, or a DataFrame with the
        reference's feature columns), actions by the guard's policy, and one event when events are on."""
        return self.check_with(batch, caller=caller, policy=self.policy)

    def check_with(self, batch: Any, *, caller: str | None, policy: GuardPolicy) -> GuardResult:
        """`check` under another policy (what `wrap` uses)."""
        state = self._state("check()")
        x = state.matrix(batch)
        broken = state.contract.violations(x)
        if x.shape[0] == 1 and not broken[0]:
            codes, score, ood, adv, z = _one(state, x)
            violations: dict[int, str] = {}
        else:
            codes, score, ood, adv, z, violations = _many(state, x, broken)
        status: ExtractionStatus | None = None
        if caller is not None:
            status = state.watch.observe(caller, z)
        actions = policy.row_codes()[codes]
        if status is not None and status.suspected:
            extraction = policy.suspected_extraction
            if extraction is Action.REFUSE:
                actions[:] = REFUSE_
            elif extraction is Action.FLAG:
                np.maximum(actions, 1, out=actions)
        result = GuardResult(
            codes=codes,
            actions=actions,
            score=score,
            ood_score=ood,
            adversarial_score=adv,
            violations=violations,
            caller=caller,
            extraction=status,
            source=self.resource or "batch",
        )
        if self.acting is not None:
            self._emit(result)
        return result

    def _emit(self, result: GuardResult) -> None:
        if self.acting is None or self.resource is None:  # checked in __init__; kept for the type checker
            return
        counts = result.counts()
        attributes: dict[str, str | int | float | bool | None] = {
            "rows": len(result),
            **counts,
            "refused": len(result.refused),
            "flagged": len(result.flagged),
            "caller": result.caller,
            "max_score": _worst(result.score),
            "max_ood_score": _worst(result.ood_score),
            "max_adversarial_score": _worst(result.adversarial_score),
        }
        # "not checked" without a caller (no caller, no history): never absent, so nobody reads it as a pass.
        attributes["extraction"] = result.extraction_verdict
        status = result.extraction
        if status is not None:
            attributes["extraction_signals"] = ",".join(status.signals)
            attributes["extraction_queries"] = status.queries
            attributes["extraction_prada_w"] = status.prada_w
        self.acting.emit(
            "model.predict", self.resource, "allowed" if result.allowed else "denied", attributes
        )

    def wrap(
        self, predict_fn: Callable[[Any], Any], *, policy: GuardPolicy | None = None
    ) -> GuardedPredictor:
        """`predict_fn` behind the guard: each call checks the batch first and refuses, flags or passes its
        rows by `policy` (default: the guard's). Call it as ``predict(batch, caller="client-7")``."""
        self._state("wrap()")
        return GuardedPredictor(self, predict_fn, policy=policy if policy is not None else self.policy)

    def forget(self, caller: str) -> bool:
        """Drop the extraction watch's memory of `caller` (after a review cleared it)."""
        return self._state("forget()").watch.forget(caller)


class _Fitted:
    __slots__ = ("calibration", "classes", "contract", "features", "scorer", "watch", "width")

    def __init__(
        self,
        *,
        features: tuple[str, ...],
        contract: CompiledContract,
        scorer: Scorer,
        calibration: Calibration,
        watch: ExtractionWatch,
        classes: tuple[Any, ...],
    ) -> None:
        self.features = features
        self.width = len(features)
        self.contract = contract
        self.scorer = scorer
        self.calibration = calibration
        self.watch = watch
        self.classes = classes

    def matrix(self, batch: Any) -> Array:
        """The batch as a float matrix in the reference's feature order; `GuardError` naming what is wrong."""
        if isinstance(batch, np.ndarray) and batch.dtype.kind in "fiub":
            x = batch
        elif hasattr(batch, "columns") and hasattr(batch, "to_numpy"):
            x = self._frame(batch)
        else:
            try:
                x = np.asarray(batch, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise GuardError(f"batch: not a numeric array or DataFrame ({exc})") from None
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise GuardError(f"batch: a {x.ndim}-D array; the guard checks rows (2-D) or one row (1-D)")
        if x.shape[1] != self.width:
            raise GuardError(
                f"batch: {x.shape[1]} columns; the guard was fitted on {self.width} features "
                f"({_names(self.features)})"
            )
        if x.dtype != np.float64:
            x = x.astype(np.float64)
        return x

    def _frame(self, frame: Any) -> Array:
        # Columns are matched by str(name), as at fit: a frame built like the reference (say with the
        # integer column names of pd.DataFrame(array)) reads the same, in any column order.
        columns = unique_columns(frame.columns, "batch")
        missing = [f for f in self.features if f not in columns]
        extra = [c for c in columns if c not in set(self.features)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(map(repr, missing[:5]))}")
            if extra:
                parts.append(f"unexpected {', '.join(map(repr, extra[:5]))}")
            raise GuardError(
                f"batch: {len(columns)} columns, {'; '.join(parts)}; the guard was fitted on "
                f"{self.width} features ({_names(self.features)})"
            )
        position = {name: j for j, name in enumerate(columns)}
        picked = frame.iloc[:, [position[f] for f in self.features]]
        try:
            return np.asarray(picked.to_numpy(dtype=np.float64, na_value=np.nan))
        except (TypeError, ValueError) as exc:
            raise GuardError(f"batch: a column is not numeric ({exc})") from None


def _one(state: _Fitted, x: Array) -> tuple[Array, Array, Array, Array, Array]:
    """Verdict and scores of one row that kept the contract: the hot path, in Python floats."""
    z, raw = state.scorer.components(x)
    norm = state.calibration.normalised(raw)[0].tolist()
    ood = max(norm[0], norm[1])
    adv = math.nan
    code = 0
    if ood > 1.0:
        code = OOD
        if state.scorer.adversarial:
            adv = float(state.scorer.ratio(x, z)[0]) / state.calibration.thresholds["adversarial"]
            code = ADVERSARIAL if adv > 1.0 else OOD
    return np.array([code], dtype=np.int8), np.array([ood]), np.array([ood]), np.array([adv]), z


def _many(
    state: _Fitted, x: Array, broken: Array
) -> tuple[Array, Array, Array, Array, Array, dict[int, str]]:
    """Verdicts and scores of a batch; rows that break the contract are not scored, and only rows over
    the out-of-distribution line get an adversarial score (one `predict_proba` call for all of them)."""
    m = x.shape[0]
    codes = np.zeros(m, dtype=np.int8)
    ood = np.full(m, np.nan)
    adv = np.full(m, np.nan)
    violations: dict[int, str] = {}
    rows = np.flatnonzero(~broken)
    for i in np.flatnonzero(broken)[:1000]:  # reasons for the first thousand; the rest say less
        violations[int(i)] = state.contract.describe(x[i])
    codes[broken] = CONTRACT
    if not rows.size:
        return codes, ood.copy(), ood, adv, np.empty((0, x.shape[1])), violations
    good = x[rows] if rows.size < m else x
    z, raw = state.scorer.components(good)
    o = state.calibration.normalised(raw).max(axis=1)
    ood[rows] = o
    over = rows[o > 1.0]
    codes[over] = OOD
    if over.size and state.scorer.adversarial:
        picked = o > 1.0
        a = state.scorer.ratio(good[picked], z[picked]) / state.calibration.thresholds["adversarial"]
        adv[over] = a
        codes[over[a > 1.0]] = ADVERSARIAL
    return codes, ood.copy(), ood, adv, z, violations


def _worst(values: Array) -> float | None:
    if values.size == 0 or np.isnan(values).all():
        return None
    return round(float(np.nanmax(values)), 4)


def _names(features: Sequence[str]) -> str:
    if len(features) <= 4:
        return ", ".join(features)
    return f"{features[0]}..{features[-1]}"
