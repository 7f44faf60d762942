"""The typer application and what every command shares: logging, errors, exit codes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden import __version__
from pipewarden.errors import ArtifactRefused, IdentityError, IntegrityError, PipewardenError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "app", "err_console", "fail", "main"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="pipewarden",
    help="The security layer for machine-learning pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def err_console() -> Console:
    """The console for errors and progress (stderr); rich is imported only when needed."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pipewarden {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug)."),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="PIPEWARDEN_SERVER",
            help="Talk to this pipewarden server (https://HOST:PORT) for login, store, audit and alerts.",
        ),
    ] = None,
    server_ca: Annotated[
        Path | None,
        typer.Option(
            "--server-ca", envvar="PIPEWARDEN_SERVER_CA", help="The CA (or certificate) to trust for it."
        ),
    ] = None,
    client_cert: Annotated[
        Path | None,
        typer.Option(
            "--client-cert",
            envvar="PIPEWARDEN_CLIENT_CERT",
            help="Present this client certificate (PEM) to the server: mutual TLS for a service account.",
        ),
    ] = None,
    client_key: Annotated[
        Path | None,
        typer.Option(
            "--client-key",
            envvar="PIPEWARDEN_CLIENT_KEY",
            help="The client certificate's private key (PEM), unless the certificate file holds it.",
        ),
    ] = None,
) -> None:
    """pipewarden: scan model files for code that runs when they are loaded, and more."""
    from pipewarden.cli._remote import configure

    configure(server, server_ca, client_cert=client_cert, client_key=client_key)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # Only pipewarden's own loggers get more verbose: third-party debug logs
    # (botocore's logs request headers, session tokens included) stay at WARNING.
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("pipewarden").setLevel(level)


def fail(exc: PipewardenError) -> typer.Exit:
    """Print an error the way every command does and return the exit to raise.

    Something that failed a security check (a tampered artifact, a bad
    signature, a refused model, a credential not accepted, an action not
    allowed) exits 1, like a finding; everything else (usage, configuration,
    missing keys) exits 2.
    """
    from rich.markup import escape

    failed_check = isinstance(exc, IntegrityError | ArtifactRefused | IdentityError)
    label = "failed" if failed_check else "error"
    err_console().print(
        f"[bold red]{label}:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
    )
    for change in getattr(exc, "changes", ()):
        err_console().print(f"  {escape(change)}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_FINDINGS if failed_check else EXIT_USAGE)


def main() -> None:
    try:
        app()
    finally:
        _close_audit_logs()


def _close_audit_logs() -> None:
    """Sign the last checkpoint over what this command recorded (see `close_audit_logs`)."""
    from pipewarden.workspace import close_audit_logs

    try:
        close_audit_logs()
    except PipewardenError as exc:
        # The command itself is done and its events are committed; only the checkpoint is missing,
        # and the next command that records anything signs one over these records too.
        err_console().print(f"warning: the audit log's closing checkpoint failed: {exc}", markup=False)
