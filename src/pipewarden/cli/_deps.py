"""`pipewarden deps`: the dependency audit of a requirements file against an OSV database."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, fail
from pipewarden.cli._common import emit_report
from pipewarden.errors import PipewardenError


@app.command("deps")
def deps(
    path: Annotated[
        Path,
        typer.Argument(
            help="requirements.txt, pyproject.toml, poetry.lock, uv.lock, pylock.toml, Pipfile.lock, "
            "a folder holding them, or an installed environment."
        ),
    ] = Path("."),
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", envvar="PIPEWARDEN_OSV_DB", help="An offline OSV database: a folder or zip of records."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help="text, json, sarif or html.")
    ] = "text",
    report: Annotated[Path | None, typer.Option("-o", "--report", help="Write the report here.")] = None,
    osv_url: Annotated[
        str,
        typer.Option(
            "--osv-url", envvar="PIPEWARDEN_OSV_URL", help="The OSV API to ask when no --db is given."
        ),
    ] = "https://api.osv.dev",
    ignores: Annotated[
        Path | None,
        typer.Option(
            "--ignores",
            help="A policy file with [[tool.pipewarden.ignore]] entries (default: the pyproject.toml "
            "beside PATH, when it has them).",
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on", envvar="PIPEWARDEN_FAIL_ON", help="Exit 1 on findings at or above this severity."
        ),
    ] = "medium",
) -> None:
    """Audit dependencies for known vulnerabilities, malicious packages, missing pins and hashes.

    With --db the advisories come from an offline OSV database (a folder or zip of records, as OSV
    publishes per ecosystem); without it, from the OSV API in batched queries. A dependency that cannot
    be audited (the API unreachable, a version that is not PEP 440) is a finding, never a pass. Exit 0
    when nothing is at or above --fail-on, 1 when something is, 2 on a usage error.
    """
    from pipewarden.findings import Severity
    from pipewarden.supply import (
        OfflineDatabase,
        OsvApi,
        apply_ignores,
        audit,
        load_ignores,
        read_dependencies,
    )

    try:
        threshold = Severity.parse(fail_on)
        source = OfflineDatabase(db) if db is not None else OsvApi(osv_url)
        result = audit(read_dependencies(path), source)
        policy = ignores
        if policy is None:
            beside = (path if path.is_dir() else path.parent) / "pyproject.toml"
            policy = beside if beside.is_file() else None
        if policy is not None:
            result = apply_ignores(result, load_ignores(policy), today=date.today())
        emit_report(result, fmt=fmt, output=report)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(result.exit_code(threshold))
