"""`pipewarden init`: a workspace with fresh keys, a configuration and a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import PipewardenError


@app.command()
def init(
    workspace: WorkspaceOption = None,
    key_provider: Annotated[
        str, typer.Option(help="Where key-encryption keys live: 'file' (a 0600 key file) or 'env'.")
    ] = "file",
    backend: Annotated[str, typer.Option(help="Artifact store backend: 'local' or 's3'.")] = "local",
    s3_bucket: Annotated[str, typer.Option(help="Bucket, for the s3 backend.")] = "",
    s3_prefix: Annotated[str, typer.Option(help="Key prefix inside the bucket.")] = "",
    s3_endpoint_url: Annotated[
        str | None, typer.Option(help="An S3-compatible endpoint (MinIO, Ceph); default AWS.")
    ] = None,
    s3_region: Annotated[str | None, typer.Option(help="Bucket region.")] = None,
    scan_fail_on: Annotated[
        str, typer.Option(help="The store refuses model files with findings at or above this severity.")
    ] = "medium",
    admin: Annotated[
        str | None, typer.Option("--admin", help="Create the first administrator, a user of this name.")
    ] = None,
    admin_password_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-password-file",
            envvar="PIPEWARDEN_ADMIN_PASSWORD_FILE",
            help="The administrator's password from this file ('-': standard input); else asked (terminal).",
        ),
    ] = None,
) -> None:
    """Create a workspace: key ring, signing key, configuration and store; with --admin, its first admin.

    Refuses to touch a workspace that exists, so keys are never replaced. It
    prompts only for the --admin password, only on a terminal, and refuses a
    weak one before creating anything. There are no default credentials.
    """
    from pipewarden.cli._users import bootstrap_admin, new_password
    from pipewarden.identity import PasswordPolicy
    from pipewarden.workspace import Workspace, WorkspaceConfig

    try:
        password = None
        if admin is not None:
            password = new_password(admin_password_file, for_whom=admin, option="--admin-password-file")
            PasswordPolicy().check_new(password, user_inputs=[admin])
        config = WorkspaceConfig(
            key_provider=key_provider,
            backend=backend,
            s3_bucket=s3_bucket,
            s3_prefix=s3_prefix,
            s3_endpoint_url=s3_endpoint_url,
            s3_region=s3_region,
            scan_fail_on=scan_fail_on,
        )
        if admin is not None:
            from pipewarden.identity._patterns import check_name

            check_name(admin, what="user")
        ws = Workspace.init(workspace, config=config)
        key = ws.public_key()
        created = bootstrap_admin(ws, admin, password) if admin is not None and password is not None else None
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"initialised workspace {ws.root}")
    if config.key_provider == "file":
        typer.echo(f"  key ring     {ws.keyring_path} (mode 0600; back it up: without it nothing opens)")
    typer.echo(f"  signing key  {ws.signing_key_path} ({key.keyid})")
    typer.echo(f"  store        {config.backend}")
    if created is not None:
        typer.echo(f"  admin        {created.name} (role admin; enrols MFA at the first 'pipewarden login')")
