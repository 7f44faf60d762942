"""`pipewarden ci`: the DevSecOps gate over a tree, in one go, with one exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption, emit_report
from pipewarden.errors import PipewardenError

DEFAULT_POLICY = "pipewarden-ci.yaml"


@app.command("ci")
def ci(
    path: Annotated[Path, typer.Argument(help="The tree to check (a repository's root).")] = Path("."),
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            "-p",
            envvar="PIPEWARDEN_CI_POLICY",
            help=f"The gate's policy file (default: {DEFAULT_POLICY} in PATH, else the built-in policy).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help="text, json, sarif or html.")
    ] = "text",
    report: Annotated[Path | None, typer.Option("-o", "--report", help="Write the report here.")] = None,
    sarif: Annotated[
        Path | None, typer.Option("--sarif", help="Also write the report as SARIF 2.1.0 here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the report as HTML here.")] = None,
) -> None:
    """Run the gate: the model scan over the tree, the dependency audit, the secrets scan, the data
    contract checks the policy names and, with a workspace, the deployment's posture.

    One merged report (text, JSON, SARIF or HTML; --sarif/--json/--html write more copies), and one line
    per check on stderr. Exit 0 when every check passed its threshold in the policy, 1 when one did not
    or could not run, 2 on a usage or policy error.
    """
    from pipewarden.findings import get_renderer
    from pipewarden.gate import GatePolicy, run_gate

    try:
        get_renderer(fmt)
        chosen = policy
        if chosen is None and (path / DEFAULT_POLICY).is_file():
            chosen = path / DEFAULT_POLICY
        gate_policy = GatePolicy.load(chosen) if chosen is not None else GatePolicy()
        opened = None
        if workspace is not None:
            from pipewarden.workspace import Workspace

            opened = Workspace.open(workspace)
        from pipewarden.cli._posture import run_posture_recorded

        result = run_gate(
            path,
            policy=gate_policy,
            workspace=opened,
            record_posture=lambda ws, run: run_posture_recorded(
                ws, run, threshold=gate_policy.posture.fail_on
            ),
        )
        emit_report(result.report, fmt=fmt, output=report)
        for extra, extra_fmt in ((sarif, "sarif"), (json_out, "json"), (html, "html")):
            if extra is not None:
                emit_report(result.report, fmt=extra_fmt, output=extra)
    except PipewardenError as exc:
        raise fail(exc) from None
    console = err_console()
    for line in result.summary_lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)
