"""The `pipewarden` command: thin over the library (parse, call, render, exit code)."""

from __future__ import annotations

# Importing each command module registers its commands on the app.
from pipewarden.cli import (  # noqa: F401  # imported for their side effect: registering commands
    _access,
    _account,
    _audit,
    _certificates,
    _ci,
    _data,
    _deps,
    _init,
    _keys,
    _login,
    _monitor,
    _posture,
    _run,
    _sbom,
    _scan,
    _secrets,
    _serve,
    _sign,
    _store,
    _users,
)
from pipewarden.cli._app import app, main

__all__ = ["app", "main"]
