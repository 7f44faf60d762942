"""Options that several commands share."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ActorOption", "WorkspaceOption", "byte_progress", "default_actor"]

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


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (None, so nothing is drawn, when piped)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from pipewarden.cli._app import err_console

    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
