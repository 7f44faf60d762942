"""A stored model made ready to answer behind the inference guard, for a pipeline stage.

The model file was read from the store (signature, key slot, chunks and digest verified) as the stage's
service account; it is refused unless the store's scan passed it, then loaded with `safe_load` (which
scans it again). The guard is fitted on the tabular data set the model's lineage names, read through the
store as the same account: a model without one is not served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.errors import GuardError
from pipewarden.store._media import TABLE_SUFFIXES, suffix_for

if TYPE_CHECKING:
    from pipewarden.store import Artifact, GuardedStore

__all__ = ["GuardedModel", "load_guarded_model"]


@dataclass(frozen=True, slots=True)
class GuardedModel:
    ref: str
    model: Any
    guard: Any
    features: tuple[str, ...]
    data_ref: str

    def predict(self, frame: Any) -> tuple[Any, Any]:
        """The guard's verdict on every row of `frame`, and the model's predictions for the rows it
        does not refuse (in row order)."""
        checked = self.guard.check(frame[list(self.features)], caller=self.ref)
        refused = set(checked.refused)
        keep = [i for i in range(len(frame)) if i not in refused]
        predictions = self.model.predict(frame[list(self.features)].iloc[keep]) if keep else []
        return checked, dict(zip(keep, predictions, strict=True))


def load_guarded_model(
    store: GuardedStore, artifact: Artifact, model_file: Path, *, scratch: Path
) -> GuardedModel:
    from pipewarden.data import read_table
    from pipewarden.guard import guard_for_model
    from pipewarden.scan import safe_load

    if not artifact.scan.scanned or artifact.scan.findings:
        raise GuardError(
            f"{artifact.ref}: not served: the store's scan did not pass it ({artifact.scan.describe()})"
        )
    data_parent = None
    for parent in artifact.parents:
        record = store.store.resolve(str(parent))
        if record.media_type.split(";")[0] in TABLE_SUFFIXES:
            data_parent = record
            break
    if data_parent is None:
        raise GuardError(
            f"{artifact.ref}: not served: its lineage names no tabular data set to fit the guard on"
        )
    model = safe_load(model_file)
    data_file = scratch / f"guard-data{suffix_for(data_parent.media_type)}"
    store.get(data_parent.ref, data_file)
    frame = read_table(data_file).frame
    guard, features = guard_for_model(
        model, frame, what=f"{artifact.ref}: not served: its data set {data_parent.ref}"
    )
    return GuardedModel(artifact.ref, model, guard, features, data_parent.ref)
