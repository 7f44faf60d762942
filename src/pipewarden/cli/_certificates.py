"""`pipewarden user certificate ...`: the client certificates service accounts authenticate with over
mutual TLS (`pipewarden serve --tls-client-ca`).

A certificate is bound to one service account by its SHA-256 fingerprint; registering or removing
one acts on that account (``user.update`` and ``role.grant`` on each of its roles), from a login
session (`pipewarden login`), never with an API token. Each change and refusal is one event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.cli._users import JsonOption, user_app, workspace_at
from pipewarden.errors import ConfigError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.identity import ClientCertificates
    from pipewarden.workspace import Workspace

certificate_app = typer.Typer(
    help="Service accounts' client certificates (mutual TLS): add, remove, list.", no_args_is_help=True
)
user_app.add_typer(certificate_app, name="certificate")


def _certificates(ws: Workspace) -> ClientCertificates:
    from pipewarden.identity import ClientCertificates, Policy

    return ClientCertificates(ws.database(), policy=Policy.for_workspace(ws.root), events=ws.events())


@certificate_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The service account.")],
    cert: Annotated[
        Path | None, typer.Option("--cert", help="The client certificate (PEM or DER).", show_default=False)
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint", help="Or its SHA-256 fingerprint (hex, colons allowed).", show_default=False
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    workspace: WorkspaceOption = None,
) -> None:
    """Bind a client certificate to a service account: over mutual TLS it then authenticates as it."""
    from pipewarden.cli._identity import acting_subject, cli_origin
    from pipewarden.identity import certificate_fingerprint

    try:
        if (cert is None) == (fingerprint is None):
            raise ConfigError("give --cert FILE or --fingerprint SHA256, one of them")
        if cert is not None:
            try:
                data = cert.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{cert}: cannot read the certificate: {exc.strerror}") from None
            try:
                fp = certificate_fingerprint(data)
            except ConfigError as exc:
                raise ConfigError(f"{cert}: {exc}") from None
        else:
            assert fingerprint is not None  # noqa: S101  # one of the two, checked above
            fp = fingerprint
        ws = workspace_at(workspace)
        certificates = _certificates(ws)
        made = certificates.register(
            name, fp, by=acting_subject(ws), origin=cli_origin(), description=description
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"registered certificate SHA-256 {made.colon_form} for {made.principal}")


@certificate_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The service account.")],
    fingerprint: Annotated[str, typer.Argument(help="The certificate's SHA-256 fingerprint.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Unbind a client certificate: it stops authenticating at once."""
    from pipewarden.cli._identity import acting_subject, cli_origin

    try:
        ws = workspace_at(workspace)
        certificates = _certificates(ws)
        gone = certificates.remove(name, fingerprint, by=acting_subject(ws), origin=cli_origin())
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"removed certificate SHA-256 {gone.colon_form} from {gone.principal}")


@certificate_app.command("list")
def list_certificates(
    name: Annotated[str | None, typer.Argument(help="One service account (default: every one).")] = None,
    as_json: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """The registered client certificates: account, fingerprint, who registered it and when."""
    from pipewarden.cli._identity import require

    try:
        ws = workspace_at(workspace)
        require(ws, "user.read", f"user:{name or '*'}")
        certificates = _certificates(ws)
        found = certificates.list(name)
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    for c in found:
        typer.echo(
            f"{c.principal:<24} {c.colon_form}  by {c.created_by} {c.created_at:%Y-%m-%d %H:%M}Z"
            + (f"  ({c.description})" if c.description else "")
        )
