"""The `pipewarden` command: thin over the library (parse, call, render, exit code)."""

from __future__ import annotations

# Importing each command module registers its commands on the app.
from pipewarden.cli import _access, _audit, _init, _keys, _login, _scan, _sign, _store, _users  # noqa: F401
from pipewarden.cli._app import app, main

__all__ = ["app", "main"]
