"""Routes of the models part."""

from __future__ import annotations

from pipewarden.server._table import GuardedRouter

router = GuardedRouter(tags=["models"])
