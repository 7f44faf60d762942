"""The `pipewarden` command: thin over the library (parse, call, render, exit code)."""

from __future__ import annotations

from pipewarden.cli import _scan  # noqa: F401 - registers `pipewarden scan` on the app
from pipewarden.cli._app import app, main

__all__ = ["app", "main"]
