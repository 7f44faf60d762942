"""`pipewarden posture`: the deployment itself against the documented baseline (docs/posture.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption, emit_report, report_attributes
from pipewarden.errors import KeyRingError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.findings import Report, Severity
    from pipewarden.workspace import Workspace

__all__ = ["POSTURE_READS", "posture", "run_posture_recorded"]

#: What a posture report shows, so what running it needs: every principal and its MFA state, everyone's
#: tokens, key-ring metadata and the audit log's records. A denial of any is one event and exit 1.
POSTURE_READS = (
    ("user.read", "user:*"),
    ("token.manage", "token:*"),
    ("key.read", "key:ring"),
    ("audit.read", "audit:log"),
)


def run_posture_recorded(ws: Workspace, run: Callable[[], Report], *, threshold: Severity) -> Report:
    """Run `run` (a posture check of `ws`) the way `pipewarden posture` does, and return its report.

    It acts as the principal behind this process's credentials (``$PIPEWARDEN_TOKEN`` or the session of
    `pipewarden login`), or else as the local operator. Each read in `POSTURE_READS` is authorized first
    (a refusal is one ``denied`` event and raises `AccessDenied`), then the run is one ``posture.check``
    event on ``posture:deployment`` recording how many findings it made, the worst, and whether any is
    at or above `threshold`. One exception: when the audit log cannot be opened because a key file is
    unusable (open to others, say), the local operator still gets the report, unrecorded, with a warning
    on stderr (the report names the key file); a principal presenting credentials gets the
    `KeyRingError`. Any other `PipewardenError` (a database that cannot be reached, credentials that do
    not authenticate) is raised for the caller to report.

    >>> report = run_posture_recorded(ws, lambda: check_posture(ws), threshold=Severity.HIGH)
    """
    from pipewarden.cli._acting import acting
    from pipewarden.cli._identity import presented_token

    try:
        doing = acting(ws)
    except KeyRingError as exc:
        if presented_token(ws) is not None:
            raise
        err_console().print(
            f"warning: this run is not recorded in the audit log: {exc}", markup=False, highlight=False
        )
        return run()
    for action, resource in POSTURE_READS:
        doing.authorize(action, resource)
    return doing.perform(
        "posture.check",
        "posture:deployment",
        run,
        describe=lambda r: report_attributes(r, threshold),
        checked_by_caller=True,
    )


@app.command("posture")
def posture(
    workspace: WorkspaceOption = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="PIPEWARDEN_POSTURE_URL",
            help="The server to check: https://host:port (an http:// URL is reported as TLS not enforced).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            envvar="PIPEWARDEN_TLS_CERT",
            help="A server certificate (PEM, any intermediates after it) to check.",
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            envvar="PIPEWARDEN_CA",
            help="CA certificates (PEM) the chain of --url or --tls-cert must verify against (default: the "
            "system trust store).",
        ),
    ] = None,
    osv_db: Annotated[
        Path | None,
        typer.Option(
            "--osv-db", envvar="PIPEWARDEN_OSV_DB", help="The offline OSV database whose age to check."
        ),
    ] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Do not connect to alert sinks to see that they answer.")
    ] = False,
    kek_max_age: Annotated[
        int,
        typer.Option(
            "--kek-max-age",
            min=1,
            envvar="PIPEWARDEN_KEK_MAX_AGE",
            help="Days after which the current key-encryption key is due for rotation.",
        ),
    ] = 365,
    fmt: Annotated[
        str, typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help="text, json, sarif or html.")
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
) -> None:
    """Audit the deployment: TLS, MFA and accounts, tokens, key files and age, the store's encryption
    and connections, the last audit verify, alert sinks, the dependency database's age.

    Every check has an id, a severity and a fix (docs/posture.md). A check that cannot be decided is a
    finding too (high), never a pass. Exit 0 when nothing is at or above --fail-on, 1 when something is
    (or the caller may not read what posture reads), 2 on a usage or configuration error, or when the
    database, where the caller is authorized and the run recorded, cannot be opened.
    """
    from datetime import timedelta

    from pipewarden.findings import Severity, get_renderer
    from pipewarden.posture import PostureBaseline, check_posture
    from pipewarden.workspace import Workspace

    try:
        threshold = Severity.parse(fail_on)
        get_renderer(fmt)  # an unknown format is a usage error before any work is done
        baseline = PostureBaseline(kek_max_age=timedelta(days=kek_max_age))
        ws = Workspace.open(workspace)

        def run() -> Report:
            return check_posture(
                ws,
                url=url,
                tls_cert=tls_cert,
                ca=ca,
                osv_db=osv_db,
                probe_sinks=not no_probe,
                baseline=baseline,
            )

        report = run_posture_recorded(ws, run, threshold=threshold)
        emit_report(report, fmt=fmt, output=output)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(report.exit_code(threshold))
