"""`pipewarden init`: a workspace with fresh keys, a configuration and a store."""

from __future__ import annotations

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
) -> None:
    """Create a workspace: key ring, signing key, configuration and store. Never prompts.

    Refuses to touch a workspace that exists, so keys are never replaced.
    """
    from pipewarden.workspace import Workspace, WorkspaceConfig

    try:
        config = WorkspaceConfig(
            key_provider=key_provider,
            backend=backend,
            s3_bucket=s3_bucket,
            s3_prefix=s3_prefix,
            s3_endpoint_url=s3_endpoint_url,
            s3_region=s3_region,
            scan_fail_on=scan_fail_on,
        )
        ws = Workspace.init(workspace, config=config)
        key = ws.public_key()
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"initialised workspace {ws.root}")
    if config.key_provider == "file":
        typer.echo(f"  key ring     {ws.keyring_path} (mode 0600; back it up: without it nothing opens)")
    typer.echo(f"  signing key  {ws.signing_key_path} ({key.keyid})")
    typer.echo(f"  store        {config.backend}")
