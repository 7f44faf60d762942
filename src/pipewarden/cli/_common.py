"""Options that several commands share."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ActorOption", "WorkspaceOption", "default_actor"]

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="PIPEWARDEN_WORKSPACE",
        help="Workspace folder (default ./.pipewarden).",
        show_default=False,
    ),
]

ActorOption = Annotated[
    str | None,
    typer.Option("--actor", envvar="PIPEWARDEN_ACTOR", help="Who is acting (default: the OS user name)."),
]


def default_actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
