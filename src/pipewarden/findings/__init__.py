"""The shared result model: `Finding`, `Severity`, `Location`, `Report`, and renderers.

Every part of pipewarden reports what it concluded as `Finding` objects in a
`Report`, which renders as text (for people), JSON, SARIF 2.1.0 or HTML::

    report.render("sarif")
"""

from __future__ import annotations

from pipewarden.findings._model import Finding, Location, Report, Severity
from pipewarden.findings._renderers import FORMATS, Renderer, get_renderer

__all__ = ["FORMATS", "Finding", "Location", "Renderer", "Report", "Severity", "get_renderer"]
