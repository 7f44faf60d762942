"""Serving a stored model behind the inference guard: ``POST /v1/models/{name}/predict``.

The model is loaded once per version, by the server: read from the store (signature, key slot, every
chunk and digest checked), refused unless the store's scan passed it, then scanned again and loaded
with the restricted unpickler (`safe_load`). The guard is fitted on the data set the model was made
from, found in its lineage; a model without one is not served (the guard could not be fitted, and an
unguarded model is not what this route offers).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from pipewarden.errors import GuardError
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state
from pipewarden.store._media import TABLE_SUFFIXES

if TYPE_CHECKING:
    from pipewarden.server._state import ServerState

router = GuardedRouter(tags=["models"])
_TABULAR = ("text/csv", "application/vnd.apache.parquet", "application/x-parquet", "application/jsonl")


@dataclass(frozen=True, slots=True)
class Served:
    ref: str
    model: Any
    guard: Any
    features: tuple[str, ...]


class ModelCache:
    """Loaded models by reference; loading one is serialized, serving is not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Served] = {}

    def get(self, served_by: ServerState, name: str, version: int | None) -> Served:
        store = served_by.store
        versions = store.versions(name)
        if not versions:
            from pipewarden.errors import ArtifactNotFound

            raise ArtifactNotFound(f"{name}: no such model")
        ref = f"{name}@{version if version is not None else max(versions)}"
        with self._lock:
            if ref not in self._models:
                self._models[ref] = _load(served_by, ref)
            return self._models[ref]


def _fetch(served_by: ServerState, ref: str, suffix: str) -> str:
    folder = served_by.workspace.root / "spool"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        served_by.store.get(ref, tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _load(served_by: ServerState, ref: str) -> Served:
    from pipewarden.data import read_table
    from pipewarden.guard import guard_for_model
    from pipewarden.scan import safe_load

    store = served_by.store
    art = store.resolve(ref)
    if not art.scan.scanned or art.scan.findings:
        raise GuardError(f"{ref}: not served: the store's scan did not pass it ({art.scan.describe()})")
    data_parent = next(
        (p for p in art.parents if store.resolve(str(p)).media_type.split(";")[0] in _TABULAR), None
    )
    if data_parent is None:
        raise GuardError(
            f"{ref}: not served: its lineage names no tabular data set to fit the inference guard on"
        )
    from pipewarden.store._media import MODEL_TYPES

    by_type = {media: suffix for suffix, media in MODEL_TYPES.items()}
    model_file = _fetch(served_by, ref, Path(art.name).suffix or by_type.get(art.media_type, ".joblib"))
    try:
        model = safe_load(model_file)
    finally:
        _remove(model_file)
    parent = store.resolve(str(data_parent))
    data_file = _fetch(served_by, parent.ref, TABLE_SUFFIXES.get(parent.media_type.split(";")[0], ".csv"))
    try:
        frame = read_table(data_file).frame
    finally:
        _remove(data_file)
    guard, features = guard_for_model(model, frame, what=f"{ref}: not served: its data set {parent.ref}")
    return Served(ref, model, guard, features)


class PredictBody(BaseModel):
    rows: list[dict[str, float | int | None]] = Field(min_length=1, max_length=10_000)


def answer(served: Served, rows: list[dict[str, float | int | None]], *, caller: str) -> dict[str, Any]:
    """The guard's verdict on every row, and the model's prediction for each row it does not refuse."""
    import pandas as pd

    frame = pd.DataFrame(
        [{f: row.get(f) for f in served.features} for row in rows], columns=list(served.features)
    )
    checked = served.guard.check(frame, caller=caller)
    refused = set(checked.refused)
    keep = [i for i in range(len(frame)) if i not in refused]
    predictions = served.model.predict(frame.iloc[keep]) if keep else []
    by_row = dict(zip(keep, (p.item() if hasattr(p, "item") else p for p in predictions), strict=True))
    return {
        "model": served.ref,
        "rows": [
            {
                "row": verdict.row,
                "verdict": verdict.verdict.value,
                "action": verdict.action.value,
                "score": verdict.score,
                "reason": verdict.reason,
                "prediction": by_row.get(verdict.row),
            }
            for verdict in checked.rows
        ],
    }


def _describe(result: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, Any] = {"rows": len(result["rows"]), "model": result["model"]}
    for row in result["rows"]:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    counts["refused"] = sum(1 for r in result["rows"] if r["action"] == "refuse")
    return counts


@router.post_("/v1/models/{name:path}/predict", guard=Guard.needs("model.predict", "model:{name}"))
def predict(
    name: str, body: PredictBody, request: Request, version: int | None = Query(default=None, ge=1)
) -> dict[str, Any]:
    """A verdict for every row, and a prediction for every row the guard does not refuse."""
    me = caller(request)
    cache: ModelCache = request.app.state.models
    found: dict[str, Any] = me.acting.perform(
        "model.predict",
        f"model:{name}",
        lambda: answer(cache.get(state(request), name, version), body.rows, caller=me.subject.name),
        describe=_describe,
    )
    return found


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
