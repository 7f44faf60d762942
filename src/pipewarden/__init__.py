"""pipewarden: the security layer for machine-learning pipelines.

The public parts live in subpackages (`pipewarden.findings`, `pipewarden.scan`);
this module only carries the version.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pipewarden")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
