"""pipewarden: the security layer for machine-learning pipelines.

The public parts live in subpackages (`pipewarden.findings`, `pipewarden.scan`);
this module only carries the version.
"""

from __future__ import annotations

# The single source of the version: pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = ["__version__"]
