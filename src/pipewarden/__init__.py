"""pipewarden: the security layer for machine-learning pipelines.

The public parts live in subpackages (`pipewarden.findings`, `pipewarden.scan`);
this module carries the version and `pipewarden.stage`, the adapter any orchestrator's
task can call (`pipewarden.pipeline.stage`).
"""

from __future__ import annotations

# The single source of the version: pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = ["__version__", "stage"]


def __getattr__(name: str) -> object:
    # `pipewarden.stage(...)`, the orchestrator adapter, without importing the pipeline part at start-up.
    if name == "stage":
        from pipewarden.pipeline import stage

        return stage
    raise AttributeError(f"module 'pipewarden' has no attribute {name!r}")
