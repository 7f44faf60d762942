"""Running the `pipewarden` command as a user would: a child process, piped, with no PIPEWARDEN_* setting
(or colour forcing) left over from the environment the tests run in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["CLI", "run"]

CLI = [sys.executable, "-m", "pipewarden.cli"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI piped (no terminal), with no PIPEWARDEN_* left over; `env` adds settings."""
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIPEWARDEN_") and k not in {"FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE"}
    }
    child_env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    child_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=child_env, capture_output=True, text=True, timeout=120, check=False
    )
