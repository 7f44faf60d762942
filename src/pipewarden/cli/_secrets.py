"""`pipewarden secrets`: secrets in code, notebooks, YAML and env files, less those a baseline accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, fail
from pipewarden.cli._common import emit_report
from pipewarden.errors import PipewardenError


@app.command("secrets")
def secrets(
    path: Annotated[
        Path, typer.Argument(help="A file or folder to scan (folders are walked; nothing is run).")
    ] = Path("."),
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            "-b",
            envvar="PIPEWARDEN_SECRETS_BASELINE",
            help="Accepted secrets, by file, type and fingerprint (default: .secrets.baseline.json in PATH, "
            "when it is there). Files are named relative to its folder when PATH is inside it.",
            show_default=False,
        ),
    ] = None,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline",
            help="Accept every secret found now: write the baseline (keeping its reasons, and the entries "
            "of files this run does not scan) and exit 0.",
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            "-x",
            help="Skip files and folders matching this glob, relative to PATH (repeatable).",
        ),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            min=1,
            help="Files larger than this (a notebook: its text, images not counted) are reported "
            "(PW-SEC-102, medium), not scanned (default 10 MiB).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help="text, json, sarif or html.")
    ] = "text",
    report: Annotated[Path | None, typer.Option("-o", "--report", help="Write the report here.")] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on", envvar="PIPEWARDEN_FAIL_ON", help="Exit 1 on findings at or above this severity."
        ),
    ] = "medium",
) -> None:
    """Find secrets (keys, tokens, passwords, private keys) in files, notebooks and their outputs.

    detect-secrets' detectors and filters are the engine. A finding says where the secret is, its type
    and a fingerprint, never the secret. Secrets in the baseline are accepted (matched by file, type and
    fingerprint, so lines may move); its entries for scanned files that match nothing any more are
    reported so they can be pruned. Exit 0 when nothing is at or above --fail-on, 1 when something is,
    2 on a usage error (a malformed baseline, a path that does not exist).
    """
    from pipewarden.findings import Severity
    from pipewarden.supply import (
        SECRETS_BASELINE_NAME,
        SECRETS_MAX_BYTES,
        find_secrets,
        write_secrets_baseline,
    )

    patterns = tuple(exclude or ())
    limit = max_bytes or SECRETS_MAX_BYTES
    default = (path if path.is_dir() else path.parent) / SECRETS_BASELINE_NAME
    try:
        threshold = Severity.parse(fail_on)
        if update_baseline:
            target = baseline or default
            count = write_secrets_baseline(path, target, exclude=patterns, max_bytes=limit)
            typer.echo(f"{target}: {count} accepted secret(s) written; give each a reason", err=True)
            raise typer.Exit(0)
        if baseline is None and default.is_file():
            baseline = default
        result = find_secrets(path, baseline=baseline, exclude=patterns, max_bytes=limit)
        emit_report(result, fmt=fmt, output=report)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(result.exit_code(threshold))
