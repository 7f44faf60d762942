"""The dashboard's pages."""

from __future__ import annotations

from pipewarden.server._table import GuardedRouter

router = GuardedRouter(tags=["dashboard"], include_in_schema=False)
