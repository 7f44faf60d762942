"""An inference guard fitted for one model on the data set it was trained on."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipewarden.errors import GuardError
from pipewarden.guard._guard import InferenceGuard

__all__ = ["guard_for_model"]


def guard_for_model(model: Any, frame: Any, *, what: str) -> tuple[InferenceGuard, tuple[str, ...]]:
    """The guard fitted on `frame` (the model's training data) for `model`, and the features it asks
    for: the model's own `feature_names_in_`, else the frame's number columns. The one other column,
    if there is exactly one, is taken as the labels; `predict_proba`, when the model has it, lets the
    guard judge adversarial rows. `GuardError` naming `what` if the frame lacks the model's features."""
    names = getattr(model, "feature_names_in_", None)
    features = (
        tuple(str(n) for n in names)
        if names is not None
        else tuple(c for c in frame.columns if np.issubdtype(frame[c].dtype, np.number))
    )
    missing = [f for f in features if f not in frame.columns]
    if missing or not features:
        raise GuardError(f"{what}: lacks the model's features {missing}")
    rest = [c for c in frame.columns if c not in features]
    labels = frame[rest[0]].to_numpy() if len(rest) == 1 else None
    proba: Any = getattr(model, "predict_proba", None)

    def named_proba(x: Any) -> Any:
        # The guard passes arrays; a model fitted on a named frame is asked with the same names.
        import pandas as pd

        return proba(pd.DataFrame(x, columns=list(features))) if names is not None else proba(x)

    guard = InferenceGuard().fit(
        frame[list(features)], labels=labels, predict_proba=named_proba if proba is not None else None
    )
    return guard, features
