"""`pipewarden scan PATH...`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption, emit_report, report_attributes
from pipewarden.cli._engine import EngineOption, SchedulerOption, announce_engine
from pipewarden.errors import PipewardenError
from pipewarden.findings import FORMATS, Severity, get_renderer
from pipewarden.scan import ScanLimits, ScanPolicy, scan_path, scan_path_dask

if TYPE_CHECKING:
    from pipewarden.events._event import Scalar
    from pipewarden.findings import Report

_DEFAULTS = ScanLimits()


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files, folders (recursive) and archives to scan.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            envvar="PIPEWARDEN_FORMAT",
            help=f"Report format: {', '.join(FORMATS)}.",
        ),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", envvar="PIPEWARDEN_OUTPUT", help="Write the report here."),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            envvar="PIPEWARDEN_FAIL_ON",
            help="Exit 1 on findings at or above: critical, high, medium, low, info.",
        ),
    ] = "medium",
    policy: Annotated[
        Path | None,
        typer.Option("--policy", envvar="PIPEWARDEN_SCAN_POLICY", help="YAML file of extra allowed globals."),
    ] = None,
    max_opcodes: Annotated[int, typer.Option(help="Opcodes per pickle stream.")] = _DEFAULTS.max_opcodes,
    max_memo: Annotated[int, typer.Option(help="Memo entries per pickle stream.")] = _DEFAULTS.max_memo,
    max_depth: Annotated[int, typer.Option(help="Nested MARKs per pickle stream.")] = _DEFAULTS.max_depth,
    max_archive_depth: Annotated[int, typer.Option(help="Containers inside containers.")] = (
        _DEFAULTS.max_archive_depth
    ),
    max_members: Annotated[int, typer.Option(help="Archive members per target.")] = _DEFAULTS.max_members,
    max_decompressed_bytes: Annotated[int, typer.Option(help="Bytes decompressed per target.")] = (
        _DEFAULTS.max_decompressed_bytes
    ),
    max_compression_ratio: Annotated[int, typer.Option(help="Decompressed/compressed size per member.")] = (
        _DEFAULTS.max_compression_ratio
    ),
    max_header_bytes: Annotated[int, typer.Option(help="Bytes of one metadata header.")] = (
        _DEFAULTS.max_header_bytes
    ),
    max_seconds: Annotated[float, typer.Option(help="Seconds per target.")] = _DEFAULTS.max_seconds,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Scan model files for code that runs on load.

    Exit 0 when clean, 1 on findings at or above --fail-on, 2 on a usage error. Inside a workspace the scan is
    recorded in its audit log (action scan.run).
    """
    from pipewarden.cli._acting import perform_where_recorded

    try:
        threshold = Severity.parse(fail_on)
        get_renderer(fmt)  # an unknown format is a usage error before any work is done
        limits = ScanLimits(
            max_opcodes=max_opcodes,
            max_memo=max_memo,
            max_depth=max_depth,
            max_archive_depth=max_archive_depth,
            max_members=max_members,
            max_decompressed_bytes=max_decompressed_bytes,
            max_compression_ratio=max_compression_ratio,
            max_header_bytes=max_header_bytes,
            max_seconds=max_seconds,
        )
        scan_policy = ScanPolicy.from_file(policy) if policy is not None else ScanPolicy.default()
        on_dask = announce_engine(engine, scheduler)

        def run(progress: Callable[[str, int, int], None] | None = None) -> Report:
            if on_dask:
                return scan_path_dask(
                    *paths, policy=scan_policy, limits=limits, progress=progress, scheduler=scheduler
                )
            return scan_path(*paths, policy=scan_policy, limits=limits, progress=progress)

        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn  # only drawn on a terminal

            with Progress(
                TextColumn("scanning"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} {task.description}"),
                console=err_console(),
                transient=True,
            ) as bar:
                task = bar.add_task("", total=None)

                def progress(path: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total, description=path[-60:])

                report = perform_where_recorded(
                    workspace,
                    "scan.run",
                    "scan",
                    paths,
                    lambda: run(progress),
                    describe=_describe(threshold),
                )
        else:
            report = perform_where_recorded(
                workspace,
                "scan.run",
                "scan",
                paths,
                run,
                describe=_describe(threshold),
            )
        emit_report(report, fmt=fmt, output=output)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(report.exit_code(threshold))


def _describe(threshold: Severity) -> Callable[[Report], dict[str, Scalar]]:
    def describe(report: Report) -> dict[str, Scalar]:
        return {"files": report.targets, **report_attributes(report, threshold)}

    return describe
