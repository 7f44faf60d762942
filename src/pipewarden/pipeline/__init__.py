"""The secured pipeline: stages behind gates, each as its own service account, with signed provenance.

>>> from pipewarden.pipeline import load_pipeline, run_pipeline, write_reports
>>> result = run_pipeline(load_pipeline("pipeline.yaml"))  # doctest: +SKIP
>>> write_reports(result)["html"]  # doctest: +SKIP

The same in Python (`Pipeline`, `gate`), and around any orchestrator's task (`stage`)::

    with pipewarden.stage("train", account="svc-train", inputs={"data": "fraud/data/train"},
                          outputs={"model": "fraud/models/clf"}) as ctx:
        ...
"""

from __future__ import annotations

from pipewarden.pipeline._gates import GateResult
from pipewarden.pipeline._provenance import Provenance, read_provenance
from pipewarden.pipeline._report import render_html, render_text, write_reports
from pipewarden.pipeline._runner import Pipeline, RunResult, gate, prepare_workspace, run_pipeline
from pipewarden.pipeline._serving import GuardedModel, load_guarded_model
from pipewarden.pipeline._spec import (
    GATE_TYPES,
    OUTCOMES,
    POLICIES,
    AccountSpec,
    GateSpec,
    InputSpec,
    PipelineSpec,
    StageSpec,
    load_pipeline,
)
from pipewarden.pipeline._stage import StageContext, StageResult, stage

__all__ = [
    "GATE_TYPES",
    "OUTCOMES",
    "POLICIES",
    "AccountSpec",
    "GateResult",
    "GateSpec",
    "GuardedModel",
    "InputSpec",
    "Pipeline",
    "PipelineSpec",
    "Provenance",
    "RunResult",
    "StageContext",
    "StageResult",
    "StageSpec",
    "gate",
    "load_guarded_model",
    "load_pipeline",
    "prepare_workspace",
    "read_provenance",
    "render_html",
    "render_text",
    "run_pipeline",
    "stage",
    "write_reports",
]
