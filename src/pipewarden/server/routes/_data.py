"""Routes of the data part."""

from __future__ import annotations

from pipewarden.server._table import GuardedRouter

router = GuardedRouter(tags=["data"])
