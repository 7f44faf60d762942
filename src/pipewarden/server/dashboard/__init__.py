"""The web dashboard: server-rendered pages under the same authorization as the API."""

from __future__ import annotations

from pipewarden.server.dashboard import _views  # noqa: F401  # its pages join `router`
from pipewarden.server.dashboard._pages import router

__all__ = ["router"]
