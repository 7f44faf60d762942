"""The DevSecOps gate: the model scan, the dependency audit, the secrets scan, data contract checks and
the deployment's posture, run in one go over a tree, merged into one report, with one exit code.

>>> from pathlib import Path
>>> from pipewarden.gate import GatePolicy, run_gate
>>> result = run_gate(Path("."), policy=GatePolicy.load(Path("pipewarden-ci.yaml")))  # doctest: +SKIP
>>> print(result.report.render("sarif"))  # doctest: +SKIP
"""

from __future__ import annotations

from pipewarden.gate._policy import DataStep, DepsStep, GatePolicy, PostureStep, ScanStep, SecretsStep
from pipewarden.gate._run import GATE_RULES, GateResult, StepResult, run_gate
from pipewarden.gate._tree import ROOT_ONLY_FOLDERS, is_virtualenv

__all__ = [
    "GATE_RULES",
    "ROOT_ONLY_FOLDERS",
    "DataStep",
    "DepsStep",
    "GatePolicy",
    "GateResult",
    "PostureStep",
    "ScanStep",
    "SecretsStep",
    "StepResult",
    "is_virtualenv",
    "run_gate",
]
