"""The JSON form: the stable, documented interface other tools read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pipewarden.findings._renderers._interface import Renderer

if TYPE_CHECKING:
    from pipewarden.findings._model import Report


class JsonRenderer(Renderer):
    name = "json"
    suffix = ".json"

    def render(self, report: Report) -> str:
        return json.dumps(report.to_dict(), indent=2, sort_keys=False, default=str) + "\n"
