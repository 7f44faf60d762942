"""Options that several commands share."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.errors import ReportError

if TYPE_CHECKING:
    from pipewarden.events._event import Scalar
    from pipewarden.findings import Report, Severity

__all__ = [
    "ActorOption",
    "WorkspaceOption",
    "byte_progress",
    "default_actor",
    "emit_report",
    "report_attributes",
    "write_text_atomically",
]

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


def write_text_atomically(target: Path, text: str, what: str) -> None:
    """Write `text` to `target` through a temporary file renamed into place; `ReportError` naming
    `what` (a report, a contract) if it cannot be written."""
    tmp = target.with_name(f".{target.name}.pipewarden-tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"{target}: cannot write the {what}: {exc.strerror or exc}") from exc


def emit_report(report: Report, *, fmt: str, output: Path | None) -> None:
    """Render `report` to stdout (in colour on a terminal), or atomically to `output`."""
    from pipewarden.findings import get_renderer

    renderer = get_renderer(fmt, color=output is None and fmt == "text" and sys.stdout.isatty())
    text = renderer.render(report)
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomically(output, text, "report")


def report_attributes(report: Report, threshold: Severity) -> dict[str, Scalar]:
    """What an event records of a command's report: how many findings, the worst, and whether the
    command failed on them."""
    worst = report.max_severity
    return {
        "findings": len(report.findings),
        "max_severity": worst.label if worst is not None else "none",
        "blocked": bool(report.at_or_above(threshold)),
    }
