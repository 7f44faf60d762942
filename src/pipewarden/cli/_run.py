"""`pipewarden run PIPELINE`: run a declared pipeline behind its gates and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.errors import PipewardenError

if TYPE_CHECKING:
    from pipewarden.pipeline import StageResult


@app.command("run")
def run(
    pipeline: Annotated[Path, typer.Argument(help="The pipeline file (YAML).")],
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="PIPEWARDEN_WORKSPACE",
            help="Workspace folder (default: the pipeline file's workspace.path, else ./.pipewarden).",
            show_default=False,
        ),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir", help="Where the run's reports go (default: runs/RUN-ID in the workspace)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="What to print: text or json.")] = "text",
) -> None:
    """Run every stage of PIPELINE in order, each as its service account behind its gates.

    Prints one line per stage as it ends, then the run's summary and the path of its HTML report
    (report.json and report.txt beside it).

    Exit 0 when every stage ended as expected (drills included) and every expected alert was raised,
    1 otherwise, 2 on a pipeline file or workspace error.
    """
    import json

    from pipewarden.pipeline import load_pipeline, render_text, run_pipeline, write_reports

    if fmt not in ("text", "json"):
        raise fail(PipewardenError(f"--format {fmt!r}: choose text or json")) from None

    def progress(result: StageResult) -> None:
        verdict = "as expected" if result.met else "NOT AS EXPECTED"
        err_console().print(
            f"{result.outcome:>8}  {result.name}  ({verdict}, {result.seconds:.1f} s)", highlight=False
        )

    try:
        spec = load_pipeline(pipeline)
        result = run_pipeline(spec, workspace=workspace, report_dir=report_dir, progress=progress)
        paths = write_reports(result)
    except PipewardenError as exc:
        raise fail(exc) from None
    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(render_text(result))
        typer.echo(f"report: {paths['html']}")
        if result.admin_password_file is not None:
            typer.echo(f"first admin's password: in {result.admin_password_file} (mode 0600)")
    raise typer.Exit(result.exit_code)
