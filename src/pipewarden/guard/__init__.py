"""The inference guard: checks every request to a model before the model sees it.

>>> from pipewarden.guard import InferenceGuard, GuardPolicy, Verdict
>>> guard = InferenceGuard().fit(reference, contract=contract, predict_proba=model.predict_proba)
>>> result = guard.check(batch, caller="client-7")
>>> [row.reason for row in result.rows if row.verdict is not Verdict.VALID]
>>> predict = guard.wrap(model.predict, policy=GuardPolicy.of({"out_of_distribution": "refuse"}))
"""

from __future__ import annotations

from pipewarden.guard._formodel import guard_for_model
from pipewarden.guard._guard import InferenceGuard
from pipewarden.guard._policy import GuardedPrediction, GuardedPredictor, GuardPolicy, Refusal, RowsRefused
from pipewarden.guard._result import RULES, Action, ExtractionStatus, GuardResult, RowVerdict, Verdict
from pipewarden.guard._scores import Calibration
from pipewarden.guard._watch import WatchSettings

__all__ = [
    "RULES",
    "Action",
    "Calibration",
    "ExtractionStatus",
    "GuardPolicy",
    "GuardResult",
    "GuardedPrediction",
    "GuardedPredictor",
    "InferenceGuard",
    "Refusal",
    "RowVerdict",
    "RowsRefused",
    "Verdict",
    "WatchSettings",
    "guard_for_model",
]
